export * from './schemas';
export * from './predict';
