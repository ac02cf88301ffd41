// The roles the account that runs `apply` needs when it is not an Owner, each with the reason. The
// prerequisites in docs/deploy.md list exactly these (a test keeps the two in step), and the deploy
// tests run as a caller holding exactly these against the fake's permission checks.
export const DEPLOYER_ROLES: readonly { role: string; why: string }[] = Object.freeze([
  { role: 'roles/serviceusage.serviceUsageAdmin', why: 'enable the APIs' },
  { role: 'roles/iam.serviceAccountAdmin', why: 'create the runtime and build service accounts' },
  {
    role: 'roles/iam.serviceAccountUser',
    why: 'deploy the service as the runtime account and run builds as the build account (iam.serviceAccounts.actAs; run/docs/configuring/services/service-identity)',
  },
  { role: 'roles/resourcemanager.projectIamAdmin', why: 'grant the two accounts their project roles' },
  { role: 'roles/secretmanager.admin', why: 'create the secrets and grant access to them' },
  {
    role: 'roles/artifactregistry.admin',
    why: 'create the repository and grant the build account write on it',
  },
  { role: 'roles/cloudbuild.builds.editor', why: 'submit the builds' },
  { role: 'roles/cloudsql.admin', why: 'create, patch and delete the instance, its database and user' },
  {
    role: 'roles/compute.networkAdmin',
    why: 'network, private services range, NEG, addresses, load balancer',
  },
  { role: 'roles/compute.securityAdmin', why: 'Cloud Armor policy and the SSL policy' },
  { role: 'roles/servicenetworking.networksAdmin', why: 'the private services access peering' },
  { role: 'roles/storage.admin', why: 'the files bucket and the build source bucket, and their IAM' },
  { role: 'roles/run.admin', why: 'the Cloud Run service and its invoker policy' },
  { role: 'roles/iap.admin', why: 'IAP on the backend service and who may pass it' },
  { role: 'roles/logging.configWriter', why: 'the log-based metrics (monitoring.enabled)' },
  { role: 'roles/monitoring.alertPolicyEditor', why: 'the alert policy (monitoring.enabled)' },
])
