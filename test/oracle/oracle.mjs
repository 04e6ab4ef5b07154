// ec2guard IAM oracle: @cloud-copilot/iam-simulate behind the JSON Lines case format
// of `ec2guard simulate --batch` (docs/cli.md). Reads one case per line on stdin and writes one result per case on stdout, in input
// order, streaming:
//
//   {"id": ..., "decision": "allowed"|"explicitDeny"|"implicitDeny", "ignoredContextKeys": [...],
//    "resultType": "single"|"wildcard"}
//   {"id": ..., "error": "..."}
//
// Blank lines are skipped (no output). Everything else that cannot be simulated gets an error line,
// so the caller can always pair outputs with inputs.
//
// Test tool only: iam-simulate is AGPL-3.0-or-later and is installed at test time by
// hack/oracle.sh into a cache outside the repository, never vendored.
//
// Mapping of the case format to iam-simulate's `Simulation` (see its README and
// dist/esm/simulation_engine/simulation.d.ts):
//   request.principal        -> request.principal (string ARN)
//   request.action           -> request.action ("service:Action")
//   request.resource         -> request.resource.resource (default "*")
//   request.resourceAccount  -> request.resource.accountId (default: the account of the resource
//                               ARN, else the principal's account, i.e. a same-account request)
//   request.context          -> request.contextVariables (values: string or list of strings; numbers
//                               and booleans are turned into their JSON text as AWS context values
//                               are strings)
//   identityPolicies[i]      -> identityPolicies [{name: "identityPolicies[i]", policy}]
//   permissionsBoundary      -> permissionBoundaryPolicies [{name: "permissionsBoundary", policy}]
//                               (null or absent = no boundary)
//   scps[i][j]               -> serviceControlPolicies [{orgIdentifier: "scps[i]", policies:
//                               [{name: "scps[i][j]", policy}]}] ([] = no organization)
//   rcps[i][j]               -> resourceControlPolicies, same shape, without AWS's RCPFullAWSAccess
//                               when a level lists it (iam-simulate refuses it as input). NOTE: iam-simulate adds AWS's
//                               RCPFullAWSAccess to every RCP level itself, as AWS does.
//   resourcePolicy           -> resourcePolicy (null or absent = none)
//   sessionPolicy            -> sessionPolicy (null or absent = none; iam-simulate accepts it only
//                               for role, assumed-role or federated-user principals)
//
// Options: simulationMode "Strict" — evaluate the request exactly as supplied (the "Discovery" mode
// would instead report under which conditions a request could be allowed, which is not a decision).
// Context keys that do not apply to the action / resource type are dropped by iam-simulate before
// evaluation, as AWS does; they are reported back as `ignoredContextKeys`.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const SIMULATION_OPTIONS = { simulationMode: 'Strict' }

const DECISIONS = {
  Allowed: 'allowed',
  ExplicitlyDenied: 'explicitDeny',
  ImplicitlyDenied: 'implicitDeny'
}

/** CaseError is a problem with the input case, reported on the case's line. */
class CaseError extends Error {}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function requireString(obj, field, path) {
  const v = obj[field]
  if (typeof v !== 'string' || v === '') {
    throw new CaseError(`${path}.${field}: must be a non-empty string, got ${JSON.stringify(v)}`)
  }
  return v
}

function optionalPolicy(value, path) {
  if (value === undefined || value === null) {
    return undefined
  }
  if (!isObject(value)) {
    throw new CaseError(`${path}: must be a policy object or null, got ${JSON.stringify(value)}`)
  }
  return value
}

function policyList(value, path) {
  if (value === undefined || value === null) {
    return []
  }
  if (!Array.isArray(value)) {
    throw new CaseError(`${path}: must be a list of policies, got ${JSON.stringify(value)}`)
  }
  return value.map((p, i) => {
    if (!isObject(p)) {
      throw new CaseError(`${path}[${i}]: must be a policy object, got ${JSON.stringify(p)}`)
    }
    return { name: `${path}[${i}]`, policy: p }
  })
}

function orgLevels(value, path, keep = () => true) {
  if (value === undefined || value === null) {
    return []
  }
  if (!Array.isArray(value)) {
    throw new CaseError(`${path}: must be a list of levels (lists of policies), got ${JSON.stringify(value)}`)
  }
  return value.map((level, i) => ({
    orgIdentifier: `${path}[${i}]`,
    policies: policyList(level, `${path}[${i}]`).filter(p => keep(p.policy))
  }))
}

/**
 * Reports whether a policy is AWS's managed RCPFullAWSAccess as Organizations lists it (one
 * statement: Allow, Principal "*", Action "*", Resource "*"). iam-simulate adds that policy to
 * every RCP level itself and refuses it in its input ("Effect must be Deny in a resource control
 * policy"), so the adapter leaves it out: the level then holds what AWS evaluates.
 */
function isRCPFullAWSAccess(policy) {
  const st = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement]
  if (st.length !== 1 || !isObject(st[0])) {
    return false
  }
  const s = st[0]
  const keys = Object.keys(s).filter(k => k !== 'Sid').sort().join(',')
  const star = v => v === '*' || (Array.isArray(v) && v.length === 1 && v[0] === '*')
  return keys === 'Action,Effect,Principal,Resource' && s.Effect === 'Allow' &&
    star(s.Principal) && star(s.Action) && star(s.Resource)
}

function contextValue(v, path) {
  if (typeof v === 'string') {
    return v
  }
  if (typeof v === 'number' || typeof v === 'boolean') {
    return String(v)
  }
  if (Array.isArray(v)) {
    return v.map((item, i) => {
      if (Array.isArray(item) || isObject(item) || item === null) {
        throw new CaseError(`${path}[${i}]: must be a string, got ${JSON.stringify(item)}`)
      }
      return String(item)
    })
  }
  throw new CaseError(`${path}: must be a string or a list of strings, got ${JSON.stringify(v)}`)
}

function contextVariables(value) {
  if (value === undefined || value === null) {
    return {}
  }
  if (!isObject(value)) {
    throw new CaseError(`request.context: must be an object, got ${JSON.stringify(value)}`)
  }
  const out = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] = contextValue(v, `request.context[${JSON.stringify(k)}]`)
  }
  return out
}

/** The account field of an ARN (arn:partition:service:region:account:...), or "" if none. */
function arnAccount(arn) {
  const parts = arn.split(':')
  if (parts.length < 6 || parts[0] !== 'arn') {
    return ''
  }
  return parts[4]
}

function resourceAccount(request, principal, resource) {
  if (request.resourceAccount !== undefined && request.resourceAccount !== null) {
    return requireString(request, 'resourceAccount', 'request')
  }
  return arnAccount(resource) || arnAccount(principal)
}

/** Builds iam-simulate's Simulation from one case of the simulate --batch format. */
export function toSimulation(c) {
  if (!isObject(c.request)) {
    throw new CaseError(`request: must be an object, got ${JSON.stringify(c.request)}`)
  }
  const req = c.request
  const principal = requireString(req, 'principal', 'request')
  const action = requireString(req, 'action', 'request')
  const resource = req.resource === undefined || req.resource === null ? '*' : requireString(req, 'resource', 'request')
  const boundary = optionalPolicy(c.permissionsBoundary, 'permissionsBoundary')
  const simulation = {
    request: {
      principal,
      action,
      resource: { resource, accountId: resourceAccount(req, principal, resource) },
      contextVariables: contextVariables(req.context)
    },
    identityPolicies: policyList(c.identityPolicies, 'identityPolicies'),
    serviceControlPolicies: orgLevels(c.scps, 'scps'),
    resourceControlPolicies: orgLevels(c.rcps, 'rcps', p => !isRCPFullAWSAccess(p))
  }
  if (boundary) {
    simulation.permissionBoundaryPolicies = [{ name: 'permissionsBoundary', policy: boundary }]
  }
  const resourcePolicy = optionalPolicy(c.resourcePolicy, 'resourcePolicy')
  if (resourcePolicy) {
    simulation.resourcePolicy = resourcePolicy
  }
  const sessionPolicy = optionalPolicy(c.sessionPolicy, 'sessionPolicy')
  if (sessionPolicy) {
    simulation.sessionPolicy = sessionPolicy
  }
  return simulation
}

function describeErrors(errors) {
  const { message, ...details } = errors
  return Object.keys(details).length === 0 ? `iam-simulate: ${message}` : `iam-simulate: ${message}: ${JSON.stringify(details)}`
}

function ignoredKeys(response) {
  const results = response.resultType === 'single' ? [response.result] : response.results
  const keys = new Set()
  for (const r of results) {
    for (const k of r.ignoredContextKeys ?? []) {
      keys.add(k)
    }
  }
  return [...keys].sort()
}

/** Evaluates one input line and returns the output object. */
export async function evaluateLine(line) {
  let c
  try {
    c = JSON.parse(line)
  } catch (err) {
    return { id: null, error: `invalid JSON: ${err.message}` }
  }
  if (!isObject(c)) {
    return { id: null, error: `case must be a JSON object, got ${JSON.stringify(c)}` }
  }
  const id = c.id ?? null
  try {
    const response = await runSimulation(toSimulation(c), SIMULATION_OPTIONS)
    if (response.resultType === 'error') {
      return { id, error: describeErrors(response.errors) }
    }
    const decision = DECISIONS[response.overallResult]
    if (!decision) {
      return { id, error: `iam-simulate: unexpected overall result ${JSON.stringify(response.overallResult)}` }
    }
    return { id, decision, resultType: response.resultType, ignoredContextKeys: ignoredKeys(response) }
  } catch (err) {
    const prefix = err instanceof CaseError ? '' : 'iam-simulate threw: '
    return { id, error: prefix + (err && err.message ? err.message : String(err)) }
  }
}

/**
 * Serves the JSON Lines protocol on stdin/stdout: cases are evaluated one at a time in input order;
 * the answers to the cases available so far are written in one batch as soon as the queue is empty
 * (or every BATCH lines), so an interactive caller always gets its answers.
 *
 * Plain 'data' events and an explicit queue rather than an async iterator over stdin: with
 * `for await` over stdin (readline's, or the stream's own) plus a deferred flush, Node 20 was seen
 * to end the loop early and exit 0 without answering the remaining cases of a chunk (reproducible
 * with two cases whose second loads a new service's data; the cause was not pinned down).
 */
function main() {
  const BATCH = 256
  const HIGH_WATER = 4096
  const LOW_WATER = 512
  // Keeps the process alive until every case has been answered, whatever the library leaves
  // pending (iam-data loads its JSON files through dynamic imports).
  const keepAlive = setInterval(() => {}, 1 << 30)
  const queue = []
  let rest = ''
  let ended = false
  let running = false

  const drain = async () => {
    running = true
    let out = []
    while (queue.length > 0) {
      const line = queue.shift()
      if (queue.length < LOW_WATER && process.stdin.isPaused() && !ended) {
        process.stdin.resume()
      }
      if (line.trim() !== '') {
        out.push(JSON.stringify(await evaluateLine(line)) + '\n')
      }
      if (out.length >= BATCH || (queue.length === 0 && out.length > 0)) {
        process.stdout.write(out.join(''))
        out = []
      }
    }
    running = false
    if (ended) {
      clearInterval(keepAlive)
    }
  }
  const kick = () => {
    if (!running) {
      drain().catch(fatal)
    }
  }

  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    rest += chunk
    let nl
    while ((nl = rest.indexOf('\n')) !== -1) {
      queue.push(rest.slice(0, nl).replace(/\r$/, ''))
      rest = rest.slice(nl + 1)
    }
    if (queue.length > HIGH_WATER) {
      process.stdin.pause()
    }
    kick()
  })
  process.stdin.on('end', () => {
    ended = true
    if (rest !== '') {
      queue.push(rest.replace(/\r$/, ''))
      rest = ''
    }
    kick()
  })
  process.stdin.on('error', fatal)
}

function fatal(err) {
  process.stderr.write(`oracle: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
}

main()
