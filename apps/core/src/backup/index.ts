/**
 * Backup repository: format (docs/backup-format.md), reader, chain
 * verification, restore planner, import and fixtures.
 */
export { BackupError, BackupErrorCode, isBackupError, type BackupErrorDetails } from './errors';
export {
  FORMAT_VERSION,
  SECTOR_SIZE,
  MAX_BLOCK_BYTES,
  INDEX_MAGIC,
  INDEX_HEADER_SIZE,
  INDEX_RECORD_SIZE,
  POINT_MANIFEST_FILE,
  isSafeName,
  parsePointManifest,
  findRecordProblem,
  recordTableFrom,
  type ChangedArea,
  type DiskManifest,
  type IndexRecord,
  type PointKind,
  type PointManifest,
  type RecordTable,
} from './format';
/** Interval arithmetic on byte ranges (union, subtract, intersect, complement, ...). */
export * as extents from './extents';
export type { IntervalList, SortedRanges } from './extents';
export { FileBackupRepository, type BackupRepository, type BlockRecord, type PointSummary } from './repository';
export { loadChain, chainProblems, checkChain } from './chain';
export { verifyChain, assertChainValid, type BlockHasher, type VerifyOptions, type VerifyProgress, type VerifyReport } from './verify';
export {
  planDisk,
  planDiskCompact,
  materializeExtents,
  extentBatches,
  toDiskPlan,
  planZeroExtents,
  assertPlannable,
  type CompactDiskPlan,
  type DiskPlan,
  type Extent,
  type ExtentCheck,
  type PlanDirection,
  type PlanDiskInput,
  type PlanPointInput,
} from './planner';
export { planRestore, planRestoreCompact, type RestorePlan, type CompactRestorePlan, type RestorePlanOf, type PlanRestoreOptions } from './restore-plan';
export { applyDiskPlan, applyDiskPlanToFile, bufferTarget, type ApplyTarget } from './apply';
export { PointWriter, DiskWriter, type NewDiskOptions, type NewPointOptions } from './writer';
export {
  importFull,
  importIncremental,
  parseChangedAreas,
  detectImageFormat,
  readJsonFile,
  type ImageFormat,
  type ImportDiskInput,
  type ImportFullOptions,
  type ImportIncrementalOptions,
} from './import';
export {
  generateFixtureChain,
  prng,
  sampleVmConfig,
  sampleDiskMetadata,
  DEFAULT_FIXTURE_DISKS,
  type FixtureChain,
  type FixtureDiskSpec,
  type FixtureOptions,
  type FixturePoint,
} from './fixtures';
