// validate.mjs: the offline checks behind deploy/validate.sh (run from the directory the npm packages are installed in).
//   node validate.mjs k8s FILE...        every document parses (YAML 1.2, no duplicate keys) and, when it is a Kubernetes
//                                        object, validates against the Kubernetes JSON schemas of kubernetes-models;
//                                        writes TypeScript for the strict (unknown-field) check to ts/
//   node validate.mjs policy BASE.yaml MANAGED.yaml ENVDIR    the deployment rules on the kustomize output; writes
//                                        the relay's environment of each rendering to ENVDIR for `check-config`
//   node validate.mjs compose FILE ENVDIR     the Compose specification schema (dclint's copy) and the rules
//   node validate.mjs envfile FILE ENVDIR     a systemd EnvironmentFile, for `check-config`
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const YAML = require("yaml");

let failures = 0;
const fail = (where, msg) => {
  failures++;
  console.error(`FAIL ${where}: ${msg}`);
};

function parseAll(file) {
  const text = fs.readFileSync(file, "utf8");
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const out = [];
  docs.forEach((d, i) => {
    for (const e of d.errors) fail(`${file} document ${i + 1}`, e.message);
    for (const w of d.warnings) fail(`${file} document ${i + 1}`, `warning: ${w.message}`);
    const v = d.toJS({ maxAliasCount: 100 });
    if (v !== null && v !== undefined) out.push(v);
  });
  return out;
}

// ---- Kubernetes --------------------------------------------------------------------------------------------------
// apiVersion "apps/v1" -> kubernetes-models/apps/v1, "v1" -> kubernetes-models/v1
function modelFor(apiVersion, kind) {
  const dir = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    return { cls: require(dir)[kind], dts: dir };
  } catch {
    return null;
  }
}

const tsLines = [];
let tsCount = 0;

function k8s(files) {
  for (const file of files) {
    parseAll(file).forEach((doc, i) => {
      const where = `${file} #${i + 1} ${doc.kind || "?"}/${doc.metadata?.name || "?"}`;
      if (typeof doc !== "object" || !doc.apiVersion || !doc.kind) return fail(where, "not a Kubernetes object");
      if (doc.apiVersion.startsWith("kustomize.config.k8s.io/")) return; // checked by `kubectl kustomize`
      const m = modelFor(doc.apiVersion, doc.kind);
      if (!m) return fail(where, `no schema for ${doc.apiVersion} ${doc.kind}`);
      try {
        new m.cls(doc).validate();
      } catch (e) {
        return fail(where, e.message);
      }
      // the strict check: TypeScript rejects unknown fields of an object literal (kubeconform's --strict, offline)
      const n = tsCount++;
      tsLines.push(`import { I${doc.kind} as T${n} } from "${m.dts}";`);
      tsLines.push(`// ${where}`);
      tsLines.push(`export const d${n}: T${n} = ${JSON.stringify(doc, null, 1)};`);
    });
  }
  fs.mkdirSync("ts", { recursive: true });
  fs.appendFileSync("ts/manifests.ts", tsLines.join("\n") + "\n");
  tsLines.length = 0;
}

function containersOf(pod) {
  return [...(pod.initContainers || []), ...(pod.containers || [])];
}

function envOf(objs, workload, cm) {
  const env = {};
  for (const c of workload.spec.template.spec.containers) {
    for (const ef of c.envFrom || []) {
      const src = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === ef.configMapRef?.name);
      if (!src) fail(workload.metadata.name, `envFrom ConfigMap ${ef.configMapRef?.name} missing`);
      else Object.assign(env, src.data);
    }
    for (const e of c.env || []) if ("value" in e) env[e.name] = e.value;
  }
  void cm;
  return env;
}

function writeEnv(dir, name, env) {
  const lines = Object.entries(env)
    .filter(([k]) => k.startsWith("AUTHRELAY_"))
    .map(([k, v]) => `${k}=${v}`);
  fs.writeFileSync(path.join(dir, name), lines.join("\n") + "\n");
}

function hardenedContainer(where, c) {
  const s = c.securityContext || {};
  if (s.readOnlyRootFilesystem !== true) fail(where, `${c.name}: readOnlyRootFilesystem must be true`);
  if (s.allowPrivilegeEscalation !== false) fail(where, `${c.name}: allowPrivilegeEscalation must be false`);
  if (!(s.capabilities?.drop || []).includes("ALL")) fail(where, `${c.name}: capabilities must drop ALL`);
  if (s.privileged) fail(where, `${c.name}: privileged`);
  for (const k of ["requests", "limits"])
    for (const r of ["cpu", "memory"]) if (!c.resources?.[k]?.[r]) fail(where, `${c.name}: resources.${k}.${r} missing`);
  if (/:latest$|^[^:]+$/.test(c.image) && c.image !== "authrelay") fail(where, `${c.name}: image ${c.image} not pinned`);
}

function hardenedPod(where, pod) {
  const s = pod.securityContext || {};
  if (s.runAsNonRoot !== true) fail(where, "pod runAsNonRoot must be true");
  if (s.seccompProfile?.type !== "RuntimeDefault") fail(where, "pod seccompProfile must be RuntimeDefault");
  if (pod.automountServiceAccountToken !== false) fail(where, "automountServiceAccountToken must be false");
  for (const c of containersOf(pod)) hardenedContainer(where, c);
}

function policy(baseFile, managedFile, envDir) {
  for (const [file, withRedis] of [
    [baseFile, true],
    [managedFile, false],
  ]) {
    const objs = parseAll(file);
    const get = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
    const where = path.basename(file);
    if (objs.some((o) => o.kind === "Secret")) fail(where, "a Secret in the rendering (create Secrets with kubectl)");
    for (const o of objs)
      if (o.kind !== "Namespace" && o.metadata.namespace !== "authrelay") fail(where, `${o.kind}/${o.metadata.name}: namespace`);
    const d = get("Deployment", "authrelay");
    if (!d) {
      fail(where, "no Deployment authrelay");
      continue;
    }
    const pod = d.spec.template.spec;
    if (!(d.spec.replicas >= 2)) fail(where, "Deployment replicas must be >= 2");
    hardenedPod(`${where} Deployment`, pod);
    const c = pod.containers.find((x) => x.name === "authrelay");
    const env = envOf(objs, d);
    const adminPort = Number((env.AUTHRELAY_ADMIN_LISTEN || "").split(":").pop());
    const portNum = (p) => (typeof p === "number" ? p : c.ports.find((x) => x.name === p)?.containerPort);
    if (c.readinessProbe?.httpGet?.path !== "/readyz" || portNum(c.readinessProbe.httpGet.port) !== adminPort)
      fail(where, "readinessProbe must be GET /readyz on the admin port");
    if (c.livenessProbe?.httpGet?.path !== "/healthz" || portNum(c.livenessProbe.httpGet.port) !== adminPort)
      fail(where, "livenessProbe must be GET /healthz on the admin port");
    if (!env.AUTHRELAY_ADMIN_LISTEN?.startsWith("0.0.0.0:")) fail(where, "admin must listen beyond loopback for probes");
    const grace = Number(env.AUTHRELAY_SHUTDOWN_GRACE || 10);
    const pause = Number(c.lifecycle?.preStop?.exec?.command?.at(-1) || 0);
    if (!(pod.terminationGracePeriodSeconds > grace + pause))
      fail(where, `terminationGracePeriodSeconds must exceed shutdown-grace ${grace} + preStop ${pause}`);
    if (!pod.topologySpreadConstraints?.length && !pod.affinity?.podAntiAffinity)
      fail(where, "no topology spread or pod anti-affinity");
    for (const k of ["Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "ConfigMap"])
      if (!objs.some((o) => o.kind === k)) fail(where, `no ${k}`);
    const hpa = get("HorizontalPodAutoscaler", "authrelay");
    if (hpa?.apiVersion !== "autoscaling/v2" || !(hpa.spec.minReplicas >= 2)) fail(where, "HPA autoscaling/v2, min >= 2");
    const np = get("NetworkPolicy", "authrelay");
    if (!np?.spec.policyTypes.includes("Egress") || !np.spec.egress?.length) fail(where, "relay egress is not restricted");
    const ports = (np?.spec.ingress || []).flatMap((r) => r.ports.map((p) => p.port)).sort();
    if (ports.join() !== "8443,9090") fail(where, `relay ingress ports ${ports}`);
    for (const r of np?.spec.ingress || []) if (!r.from?.length) fail(where, "relay ingress rule open to all");
    const sts = get("StatefulSet", "redis");
    if (withRedis) {
      if (!sts) fail(where, "no Redis StatefulSet");
      else hardenedPod(`${where} StatefulSet`, sts.spec.template.spec);
      if (!env.AUTHRELAY_REDIS_SENTINEL || !env.AUTHRELAY_REDIS_MASTER) fail(where, "relay not pointed at Sentinel");
      for (const s of (env.AUTHRELAY_REDIS_SENTINEL || "").split(",")) {
        const svc = s.split(".")[1];
        if (svc !== sts?.spec.serviceName) fail(where, `Sentinel ${s} is not a pod of Service ${sts?.spec.serviceName}`);
      }
    } else {
      if (sts) fail(where, "managed-redis still runs the Redis StatefulSet");
      if (!env.AUTHRELAY_REDIS) fail(where, "managed-redis: no AUTHRELAY_REDIS");
    }
    writeEnv(envDir, withRedis ? "k8s.env" : "k8s-managed-redis.env", env);
  }
}

// ---- Compose -----------------------------------------------------------------------------------------------------
function compose(file, envDir) {
  const [doc] = parseAll(file);
  // not in dclint's "exports": read the file from the installed package
  const schemaFile = path.join(path.dirname(new URL(import.meta.url).pathname), "node_modules/dclint/schemas/compose.schema.json");
  const Ajv = require("ajv");
  const ajv = new Ajv({ allErrors: true, strict: false });
  const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
  delete schema.$schema; // "https://json-schema.org/draft-07/schema": draft-07, Ajv's default, under another spelling
  const validate = ajv.compile(schema);
  if (!validate(doc))
    for (const e of validate.errors) fail(file, `schema: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
  const services = doc.services || {};
  const relays = Object.keys(services).filter((n) => (services[n].image || "").startsWith("authrelay"));
  if (relays.length < 2) fail(file, "fewer than 2 relay services");
  for (const [name, s] of Object.entries(services)) {
    const where = `${file} service ${name}`;
    if (s.read_only !== true) fail(where, "read_only must be true");
    if (!s.user || /^0(:|$)|^root/.test(String(s.user))) fail(where, "user must be set, not root");
    if (!(s.cap_drop || []).includes("ALL")) fail(where, "cap_drop must include ALL");
    if (!(s.security_opt || []).some((o) => /^no-new-privileges(:true)?$/.test(o))) fail(where, "no-new-privileges");
    if (!s.healthcheck?.test) fail(where, "no healthcheck");
    if (relays.includes(name)) {
      if (s.user !== "10001:10001") fail(where, "relay user must be 10001:10001");
      if (s.ports) fail(where, "relay ports must not be published (the load balancer is)");
      const targets = (s.secrets || []).map((x) => x.target);
      for (const t of ["/etc/authrelay/tls.crt", "/etc/authrelay/tls.key", "/etc/authrelay/keys.json"])
        if (!targets.includes(t)) fail(where, `no secret at ${t}`);
      writeEnv(envDir, `compose-${name}.env`, expand(s.environment || {}));
    }
    for (const sec of s.secrets || []) if (!doc.secrets?.[sec.source]) fail(where, `undefined secret ${sec.source}`);
  }
  const published = Object.keys(services).filter((n) => services[n].ports);
  if (published.length !== 1) fail(file, `one service should publish the public port, not: ${published}`);
}

// ${VAR:-default} -> default (what compose does with VAR unset)
function expand(env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) out[k] = String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1");
  return out;
}

function envfile(file, envDir) {
  const env = {};
  fs.readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (/^\s*(#|$)/.test(line)) return;
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      if (!m) return fail(`${file}:${i + 1}`, "not NAME=value");
      if (!m[1].startsWith("AUTHRELAY_")) fail(`${file}:${i + 1}`, `${m[1]} is not an authrelay setting`);
      env[m[1]] = m[2];
    });
  writeEnv(envDir, "systemd.env", env);
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "k8s") k8s(args);
else if (cmd === "policy") policy(args[0], args[1], args[2]);
else if (cmd === "compose") compose(args[0], args[1]);
else if (cmd === "envfile") envfile(args[0], args[1]);
else {
  console.error("usage: node validate.mjs k8s FILE... | policy BASE MANAGED ENVDIR | compose FILE ENVDIR | envfile FILE ENVDIR");
  process.exit(2);
}
if (failures) {
  console.error(`${failures} problem(s)`);
  process.exit(1);
}
