// IAM policies as gcloud's `get-iam-policy --format=json` prints them (the IAM v1 Policy: bindings of
// a role to members, and the etag a `set-iam-policy` sends back so a concurrent change is refused).
// Typed, as berglas types its policies, so a step reads members by role instead of poking at JSON.

export interface Binding {
  role: string
  /** `user:`, `group:`, `serviceAccount:`, `domain:`, `allUsers`, `allAuthenticatedUsers`. */
  members?: string[]
  /** Conditional bindings are neither written nor read by the deploy (`--condition=None`). */
  condition?: unknown
}

export interface Policy {
  bindings?: Binding[]
  etag?: string
  version?: number
}

/** Members bound to `role` in a policy (none for a resource without one). */
export function membersOf(policy: Policy | undefined, role: string): string[] {
  return (policy?.bindings ?? []).filter((b) => b.role === role).flatMap((b) => b.members ?? [])
}
