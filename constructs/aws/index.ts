export * from './model-bucket';
export * from './eks-stack';
