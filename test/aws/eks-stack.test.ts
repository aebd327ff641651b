/** BotShardingEksStack: the synthesized CloudFormation template (aws-cdk-lib/assertions) for the example catalog and for edge cases. */
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parseCatalog, plan } from '@botshard/runtime';
import { syntheticCatalog } from '../../bench/synthetic';
import { BotShardingEksStack, BotShardingEksStackProps } from '../../constructs/aws';
import { exampleCatalogInput } from '../constructs/support';

type Resource = { Type: string; Properties: any; DependsOn?: string[]; DeletionPolicy?: string };
const MANIFEST = 'Custom::AWSCDK-EKS-KubernetesResource';


function synth(props: Partial<BotShardingEksStackProps> = {}, catalog = parseCatalog(exampleCatalogInput())) {
  const app = new App();
  const stack = new BotShardingEksStack(app, 'BotShard', { catalog, ...props });
  const template = Template.fromStack(stack);
  return { stack, template, resources: template.toJSON().Resources as Record<string, Resource>, catalog };
}

/** The Kubernetes objects a manifest resource applies (tokens such as the role ARN rendered as "<token>"). */
function objectsOf(resource: Resource): any[] {
  const m = resource.Properties.Manifest;
  const text = typeof m === 'string' ? m : m['Fn::Join'][1].map((part: unknown) => (typeof part === 'string' ? part : '<token>')).join('');
  return JSON.parse(text);
}

const ofType = (resources: Record<string, Resource>, type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

describe('BotShardingEksStack on the example catalog (new cluster, IRSA)', () => {
  let built: ReturnType<typeof synth>;
  beforeAll(() => {
    built = synth();
  });

  test('the model bucket is encrypted, private, TLS-only, versioned and retained', () => {
    const { template } = built;
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        VersioningConfiguration: { Status: 'Enabled' },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Principal: { AWS: '*' } }),
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  test('pools may only read the model bucket: GetObject on its objects, ListBucket on it, no wildcard resource', () => {
    const { resources, template } = built;
    const bucket = Object.keys(template.findResources('AWS::S3::Bucket'))[0];
    const readers = ofType(resources, 'AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes(bucket));
    expect(readers).toHaveLength(1);
    const [, policy] = readers[0];
    expect(policy.Properties.PolicyDocument.Statement).toEqual([
      { Sid: 'ReadModels', Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/*']] } },
      { Sid: 'ListModels', Effect: 'Allow', Action: 's3:ListBucket', Resource: { 'Fn::GetAtt': [bucket, 'Arn'] } },
    ]);
    expect(JSON.stringify(policy.Properties.PolicyDocument)).not.toMatch(/"Resource":"\*"|"\*"\]/);
    // The policy belongs to the role that only the pools' ServiceAccount may assume (IRSA trust on the OIDC subject).
    const role = policy.Properties.Roles[0].Ref as string;
    const trust = JSON.stringify(resources[role].Properties.AssumeRolePolicyDocument);
    expect(trust).toContain('sts:AssumeRoleWithWebIdentity');
    const conditions = ofType(resources, 'Custom::AWSCDKCfnJson').map(([, r]) => JSON.stringify(r.Properties.Value));
    expect(conditions).toHaveLength(1);
    expect(conditions[0]).toContain('system:serviceaccount:botshard:botshard-pool');
    expect(conditions[0]).toContain('sts.amazonaws.com');
  });

  test("the pools' ServiceAccount carries the role; the router's has no AWS role", () => {
    const { resources, template } = built;
    const manifests = ofType(resources, MANIFEST);
    const serviceAccounts = manifests.flatMap(([id, r]) => objectsOf(r).filter((o) => o.kind === 'ServiceAccount').map((o) => ({ id, o })));
    const pool = serviceAccounts.filter(({ o }) => o.metadata.name === 'botshard-pool');
    expect(pool).toHaveLength(1); // created once, by the stack, not also by the chart
    expect(pool[0].o.metadata).toMatchObject({ namespace: 'botshard', annotations: { 'eks.amazonaws.com/role-arn': '<token>' } });
    const poolRole = Object.keys(template.findResources('AWS::IAM::Role')).find((id) => JSON.stringify(resources[pool[0].id].Properties.Manifest).includes(id));
    expect(poolRole).toMatch(/PoolServiceAccountRole/);
    const router = serviceAccounts.filter(({ o }) => o.metadata.name === 'botshard-router');
    expect(router).toHaveLength(1);
    expect(router[0].o.metadata.annotations).toBeUndefined();
    expect(router[0].o.automountServiceAccountToken).toBe(false);
    // No role anywhere is assumable by the router.
    for (const [, r] of ofType(resources, 'AWS::IAM::Role')) expect(JSON.stringify(r.Properties)).not.toContain('botshard-router');
    for (const [, r] of ofType(resources, 'Custom::AWSCDKCfnJson')) expect(JSON.stringify(r.Properties)).not.toContain('botshard-router');
  });

  test('the charts are applied: the platform first, then every pool Deployment of the plan, after the ServiceAccount', () => {
    const { resources, catalog } = built;
    const manifests = ofType(resources, MANIFEST);
    const byKind = (kind: string) => manifests.flatMap(([, r]) => objectsOf(r).filter((o) => o.kind === kind));
    const pools = plan(catalog).pools.map((p) => p.name).sort();
    const deployments = byKind('Deployment');
    expect(deployments.filter((d) => d.metadata.name !== 'botshard-router').map((d) => d.metadata.name).sort()).toEqual(pools);
    for (const d of deployments.filter((x) => x.metadata.name !== 'botshard-router')) {
      expect(d.spec.template.spec.serviceAccountName).toBe('botshard-pool');
      expect(d.spec.template.spec.containers[0].env).toContainEqual({ name: 'BOTSHARD_MODELS', value: '/models' });
    }
    expect(byKind('Namespace').map((n) => n.metadata.name)).toEqual(['botshard']);
    expect(byKind('ConfigMap').length).toBeGreaterThan(0);
    const ids = Object.fromEntries(manifests.map(([id, r]) => [id, r]));
    const platform = Object.keys(ids).find((id) => id.startsWith('Clusterplatform'))!;
    const sa = Object.keys(ids).find((id) => id.includes('PoolServiceAccount'))!;
    const groups = Object.keys(ids).filter((id) => id.startsWith('Clusterpoolgroup'));
    expect(groups).toHaveLength(catalog.groups.length);
    expect(ids[sa].DependsOn).toContain(platform);
    for (const g of groups) expect(ids[g].DependsOn).toEqual(expect.arrayContaining([platform, sa]));
    expect(built.stack.manifestBytes.platform).toBeGreaterThan(10_000);
  });

  test('a new cluster with the v1.31 kubectl layer and a managed node group; outputs for the bucket and the role', () => {
    const { template } = built;
    template.hasResourceProperties('Custom::AWSCDK-EKS-Cluster', { Config: Match.objectLike({ version: '1.31' }) });
    template.hasResourceProperties('AWS::EKS::Nodegroup', { ScalingConfig: { DesiredSize: 2, MinSize: 2, MaxSize: 2 }, InstanceTypes: ['m5.large'] });
    template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    expect(Object.keys(template.toJSON().Outputs)).toEqual(expect.arrayContaining(['ModelBucketName', 'PoolRoleArn', 'ClusterName']));
  });

  test('the template stays well under the CloudFormation limit', () => {
    expect(JSON.stringify(built.template.toJSON()).length).toBeLessThan(400_000);
  });

  test('matches the snapshot (asset hashes masked)', () => {
    const text = JSON.stringify(built.template.toJSON(), null, 1).replace(/[0-9a-f]{64}/g, '<asset-hash>');
    expect(JSON.parse(text)).toMatchSnapshot();
  });
});

describe('BotShardingEksStack variants', () => {
  test('EKS Pod Identity: an association for the pools only, the agent add-on, and the chart keeps its ServiceAccount', () => {
    const { template, resources } = synth({ identity: 'pod-identity' });
    template.resourceCountIs('AWS::EKS::PodIdentityAssociation', 1);
    template.hasResourceProperties('AWS::EKS::PodIdentityAssociation', { Namespace: 'botshard', ServiceAccount: 'botshard-pool', RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PoolRole'), 'Arn'] } });
    template.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'eks-pod-identity-agent' });
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' })]) },
    });
    const serviceAccounts = ofType(resources, MANIFEST).flatMap(([, r]) => objectsOf(r).filter((o) => o.kind === 'ServiceAccount'));
    expect(serviceAccounts.map((s) => s.metadata.name).sort()).toEqual(['botshard-pool', 'botshard-router']);
    expect(serviceAccounts.every((s) => s.metadata.annotations === undefined)).toBe(true);
    expect(ofType(resources, 'Custom::AWSCDKCfnJson')).toHaveLength(0);
  });

  test('an existing cluster is imported: no cluster, VPC or node group is created, the manifests are applied', () => {
    const { template, resources } = synth({
      existingCluster: {
        clusterName: 'prod',
        kubectlRoleArn: 'arn:aws:iam::123456789012:role/prod-kubectl',
        openIdConnectProviderArn: 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE',
      },
    });
    template.resourceCountIs('Custom::AWSCDK-EKS-Cluster', 0);
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.resourceCountIs('AWS::EKS::Nodegroup', 0);
    expect(ofType(resources, MANIFEST).length).toBe(4); // platform, ServiceAccount, two pool groups
    expect(JSON.stringify(ofType(resources, 'Custom::AWSCDKCfnJson')[0][1].Properties.Value)).toContain('oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE:sub');
  });

  test('GitOps: no manifests in the template, whatever the catalog size', () => {
    const big = parseCatalog(syntheticCatalog({ bots: 3000, seed: 3 }));
    const { template } = synth({ deployManifests: false, identity: 'pod-identity' }, big);
    template.resourceCountIs(MANIFEST, 1); // aws-auth only, which the cluster itself manages
    template.resourceCountIs('AWS::EKS::PodIdentityAssociation', 1);
  });

  test('a catalog too large for CloudFormation is an error naming the size and the GitOps path', () => {
    const big = parseCatalog(syntheticCatalog({ bots: 3000, seed: 3 }));
    expect(() => synth({}, big)).toThrow(
      /BotShardingEksStack BotShard: the Kubernetes manifests of 3000 bots are too large to apply through CloudFormation: chart "platform" takes [0-9.]+ kB, over the 200\.0 kB a chart may take .*set deployManifests: false .*Argo CD or Flux apply dist\//,
    );
  });

  test('the total budget applies across charts', () => {
    expect(() => synth({ maxManifestTemplateBytes: 50_000 })).toThrow(/the Kubernetes manifests of 43 bots take [0-9.]+ kB of the CloudFormation template, over the 50\.0 kB allowed .*GitOps/);
  });

  test.each([
    [{ deployManifests: false }, /identity "irsa" needs the ServiceAccount .* use identity: "pod-identity" with GitOps/],
    [{ existingCluster: { clusterName: 'prod' } }, /existingCluster\.kubectlRoleArn is missing, .* set deployManifests: false/],
    [{ existingCluster: { clusterName: 'prod', kubectlRoleArn: 'arn:aws:iam::1:role/k' } }, /existingCluster\.openIdConnectProviderArn is missing, and identity is "irsa"/],
    [{ existingCluster: { clusterName: 'prod', kubectlRoleArn: 'arn:aws:iam::1:role/k', openIdConnectProviderArn: 'arn:x' }, nodes: 3 }, /nodes only apply to a new cluster/],
    [{ nodes: 1.5 }, /nodes must be a whole number from 0 to 100, got 1\.5/],
    [{ identity: 'kiam' as never }, /identity must be "irsa" or "pod-identity", got "kiam"/],
    [{ modelBucketName: 'Models_Bucket' }, /bucketName "Models_Bucket" is not a valid S3 bucket name/],
    [{ maxChartBytes: 300_000 }, /maxChartBytes 300000 is above the 262144-byte Lambda event limit/],
  ])('rejects %j early with the value and the fix', (props, message) => {
    expect(() => synth(props as Partial<BotShardingEksStackProps>)).toThrow(message);
  });
});
