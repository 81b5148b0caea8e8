export * from './config';
export * from './logger';
export * from './errors';
export * from './db';
export * from './redis';
export * from './queue';
export * from './openapi';
export * from './jobs';
export * from './backup';
// The vSphere client under one name: its generic names (Schema, TaskInfo, runTask) stay apart.
export * as vsphere from './vsphere';
export * from './backups-service';
export * from './secrets';
export * from './vcenters';
export * from './webhooks';
export * from './metrics';
export * from './auth';
export * from './restore';
// The ConfigSpec builder under one name (R2/R4/R5): its names stay apart.
export * as configspec from './configspec';
export * from './capacity';
