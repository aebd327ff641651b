export * from './schemas';
export * from './predict';
export * from './replies';
