/** Spec texts for the spec tests: the reference's minimal example, and a generator for workstream members. */

/** The minimal example of the agent-spec reference, verbatim, plus one section Toka does not know. */
export const MINIMAL_YAML = `metadata:
  name: changelog-writer
  version: v0.1.0
  created: "2026-11-20"
  workstream: Release Notes
spec:
  name: Changelog Writer Agent
  domain: documentation
  priority: medium
capabilities:
  primary: [summarise-commits]
objectives:
  - description: Summarise the changes since the last tag
    deliverable: CHANGELOG.md section for the next release
    validation: The section lists every merged change once
tasks:
  default:
    - description: Read the git log since the last tag and draft the changelog section
      priority: high
dependencies:
  required: []
reporting:
  frequency: on-completion
  channels: [kernel-events]
  metrics:
    - entries-written: Number of changelog entries written
security:
  sandbox: true
  capabilities_required: [filesystem-read, filesystem-write, git-access]
  resource_limits: {max_memory: 256MB, max_cpu: 50%, timeout: 10m}
team_notes:
  owner: docs-team
  reviewers: [ana, bo]
`;

/** A valid spec for agent `name` requiring `deps` (map encoding, or list encoding when `listForm`). */
export function memberYaml(name: string, priority: string, deps: string[], listForm = false): string {
  const required =
    deps.length === 0
      ? '  required: {}\n'
      : listForm
        ? `  required:\n${deps.map((d) => `    - ${d}: needs ${d}\n`).join('')}`
        : `  required:\n${deps.map((d) => `    ${d}: needs ${d}\n`).join('')}`;
  return `metadata:
  name: ${name}
  version: v1.0.0
  created: "2026-01-02"
  workstream: Worked Example
spec:
  name: Agent ${name}
  domain: testing
  priority: ${priority}
capabilities:
  primary: [work]
objectives:
  - description: Do the work of ${name}
    deliverable: The output of ${name}
    validation: The output of ${name} exists
tasks:
  default:
    - description: Do the work
      priority: ${priority}
dependencies:
${required}`;
}
