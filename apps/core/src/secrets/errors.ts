// Errors of the secrets module. Messages name key ids and contexts at most,
// never key material, plaintext or ciphertext.

export const SECRET_ERROR_CODES = ['SECRET_KEYRING_INVALID', 'SECRET_KEY_UNKNOWN', 'SECRET_DECRYPT_FAILED'] as const;
export type SecretErrorCode = (typeof SECRET_ERROR_CODES)[number];

export class SecretError extends Error {
  constructor(
    readonly code: SecretErrorCode,
    message: string,
  ) {
    // No `cause`: OpenSSL errors carry nothing useful and we keep the chain free of buffers.
    super(message);
    this.name = 'SecretError';
  }
}
