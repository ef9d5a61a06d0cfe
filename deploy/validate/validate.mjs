// validate.mjs: the offline checks behind deploy/validate.sh (run from the directory the npm packages are installed in).
//   node validate.mjs k8s FILE...        every document parses (YAML 1.2, no duplicate keys) and, when it is a Kubernetes
//                                        object, validates against the Kubernetes JSON schemas of kubernetes-models;
//                                        writes TypeScript for the strict (unknown-field) check to ts/
//   node validate.mjs policy ENVDIR NAME=RENDERING.yaml...    the deployment rules on the kustomize output of
//                                        deploy/k8s (NAME k8s), overlays/managed-redis and overlays/redis-tls; writes
//                                        the relay's environment of each rendering to ENVDIR/NAME.env for `check-config`
//   node validate.mjs compose ENVDIR NAME=FILE[+OVERRIDE]...   the Compose specification schema (dclint's copy) and
//                                        the rules, on each file as compose merges it with its override
//   node validate.mjs envfile FILE ENVDIR     a systemd EnvironmentFile, for `check-config`
//   node validate.mjs redisconf FILE     a redis.conf snippet: maxmemory and maxmemory-policy noeviction
//   node validate.mjs stunnel K8S.conf COMPOSE.conf      the two stunnel configurations agree but for `accept`
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

// ---- Redis memory, client addresses, stunnel (issue 12) ---------------------------------------------------------
// "256mb", "1gb", "268435456" (redis.conf units) and "512Mi", "512M", "1Gi" (Kubernetes / Compose) -> bytes
function bytes(v) {
  const m = /^(\d+)\s*(k|kb|ki|m|mb|mi|g|gb|gi)?b?$/i.exec(String(v).trim());
  if (!m) return NaN;
  const unit = (m[2] || "").toLowerCase();
  const mult = { "": 1, k: 1e3, kb: 1024, ki: 1024, m: 1e6, mb: 1024 ** 2, mi: 1024 ** 2, g: 1e9, gb: 1024 ** 3, gi: 1024 ** 3 };
  return Number(m[1]) * mult[unit];
}

// the maxmemory directives of a redis.conf text (lines "maxmemory X" / "maxmemory-policy P", possibly inside `echo "..."`)
// must say: a maxmemory, and noeviction (volatile-* and allkeys-* evict live sessions before their TTL); maxmemory holds
// sessionsMax sessions by the sizing rule of docs/operations.md ("Sessions and memory": 1.4 KB each, doubled, + 10 MB);
// the memory limit leaves room above it. Returns bytes.
function redisMemory(where, text, limit, sessionsMax = 100000) {
  text = text
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n");
  const mm = [...text.matchAll(/(?:^|["\s])maxmemory\s+([0-9]+[a-z]*)/gim)].map((m) => m[1]);
  const pol = [...text.matchAll(/(?:^|["\s])maxmemory-policy\s+([a-z-]+)/gim)].map((m) => m[1]);
  if (mm.length !== 1 || !(bytes(mm[0]) > 0)) fail(where, `Redis needs exactly one maxmemory > 0, found: ${mm.join(", ") || "none"}`);
  if (pol.length !== 1 || pol[0] !== "noeviction")
    fail(where, `Redis maxmemory-policy must be noeviction (other policies evict live sessions), found: ${pol.join(", ") || "none"}`);
  const max = bytes(mm[0]);
  const need = Number(sessionsMax) * 1400 * 2 + 10e6;
  if (!(max >= need)) fail(where, `maxmemory ${mm[0]} is below ${Math.ceil(need / 2 ** 20)} MiB for ${sessionsMax} sessions`);
  if (limit !== undefined) {
    const lim = bytes(limit);
    if (!(lim >= 1.5 * max)) fail(where, `Redis memory limit ${limit} leaves too little above maxmemory ${mm[0]} (want >= 1.5x)`);
  }
  return max;
}

function redisconf(file) {
  redisMemory(file, fs.readFileSync(file, "utf8"));
}

// key = value lines of a stunnel configuration ([section] lines as "[section]"), comments dropped
function stunnelSettings(text) {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith(";") && !l.startsWith("#"))
    .map((l) => l.replace(/\s*=\s*/, " = "));
}

function stunnelRules(where, text) {
  const set = stunnelSettings(text);
  const val = (k) => set.filter((l) => l.startsWith(`${k} = `)).map((l) => l.slice(k.length + 3));
  const one = (k) => {
    const v = val(k);
    if (v.length !== 1) fail(where, `stunnel: exactly one ${k} expected, found ${v.length}`);
    return v[0] || "";
  };
  if (one("client") !== "yes") fail(where, "stunnel: client = yes");
  if (one("verifyChain") !== "yes") fail(where, "stunnel: verifyChain = yes (verify the server's certificate)");
  const host = one("connect").replace(/:\d+$/, "");
  if (one("checkHost") !== host) fail(where, `stunnel: checkHost must be the connect host ${host}`);
  if (one("sni") !== host) fail(where, `stunnel: sni must be the connect host ${host}`);
  if (!one("CAfile")) fail(where, "stunnel: CAfile");
  if (!["TLSv1.2", "TLSv1.3"].includes(one("sslVersionMin"))) fail(where, "stunnel: sslVersionMin TLSv1.2 or later");
  if (val("verifyPeer").includes("no") || val("verify").length) fail(where, "stunnel: no verify/verifyPeer overrides");
  if (one("foreground") !== "yes") fail(where, "stunnel: foreground = yes (the container's process)");
  if (one("pid") !== "") fail(where, "stunnel: pid = (empty: nothing written on a read-only root)");
  return { accept: one("accept"), connect: one("connect"), cafile: one("CAfile") };
}

function stunnel(k8sFile, composeFile) {
  const a = stunnelSettings(fs.readFileSync(k8sFile, "utf8"));
  const b = stunnelSettings(fs.readFileSync(composeFile, "utf8"));
  stunnelRules(k8sFile, a.join("\n"));
  stunnelRules(composeFile, b.join("\n"));
  const strip = (l) => l.filter((x) => !x.startsWith("accept = ")).join("\n");
  if (strip(a) !== strip(b)) fail(composeFile, `stunnel settings differ from ${k8sFile} beyond accept`);
}

// how the relay learns client addresses, when it rate-limits per address (behind a proxy every client shares its address)
function clientAddressRules(where, env) {
  const limit = env.AUTHRELAY_RATE_LIMIT === undefined ? 600 : Number(env.AUTHRELAY_RATE_LIMIT);
  if (!(limit > 0)) fail(where, "the per-address rate limit is off (AUTHRELAY_RATE_LIMIT 0)");
  const pp = ["1", "true"].includes(String(env.AUTHRELAY_PROXY_PROTOCOL || "").toLowerCase());
  if (limit > 0 && !pp && !env.AUTHRELAY_TRUSTED_PROXY)
    fail(where, "behind a proxy the rate limit needs AUTHRELAY_PROXY_PROTOCOL=1 or AUTHRELAY_TRUSTED_PROXY");
  return pp;
}

function policy(envDir, renderings) {
  for (const spec of renderings) {
    const [name, file] = spec.split("=");
    const withRedis = name === "k8s";
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
    clientAddressRules(where, env);
    const ing = objs.find((o) => o.kind === "Ingress");
    if (ing) {
      const host = new URL(env.AUTHRELAY_PUBLIC_URL).hostname;
      const rules = ing.spec.rules || [];
      if (!rules.length || rules.some((r) => r.host !== host)) fail(where, `Ingress host must be the public URL's ${host}`);
      if (!(ing.spec.tls || []).some((t) => (t.hosts || []).includes(host))) fail(where, `Ingress TLS for ${host}`);
      for (const r of rules)
        for (const p of r.http?.paths || [])
          if (p.backend.service?.name !== "authrelay" || p.backend.service?.port?.name !== "https")
            fail(where, "Ingress backend must be Service authrelay, port https");
      const ann = ing.metadata.annotations || {};
      if (env.AUTHRELAY_PLAIN !== "1" && ann["nginx.ingress.kubernetes.io/backend-protocol"] !== "HTTPS")
        fail(where, "Ingress: the relays speak TLS: backend-protocol HTTPS");
      const wait = Number(env.AUTHRELAY_WAIT_MAX || 30);
      if (!(Number(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] || 60) > wait))
        fail(where, `Ingress proxy-read-timeout must exceed the long-poll ${wait} s`);
      if (ann["nginx.ingress.kubernetes.io/ssl-passthrough"] === "true")
        fail(where, "Ingress: SSL passthrough loses the client's address (and X-Forwarded-For)");
      if (!env.AUTHRELAY_TRUSTED_PROXY) fail(where, "behind the HTTP Ingress the relays need AUTHRELAY_TRUSTED_PROXY");
    }
    const sidecar = pod.containers.find((x) => x.name === "stunnel");
    if (name === "k8s-redis-tls") {
      if (!sidecar) fail(where, "no stunnel sidecar");
      else {
        // its configuration: the generated ConfigMap, mounted where its args say
        const vol = pod.volumes.find((v) => v.name === sidecar.volumeMounts?.[0]?.name);
        const mount = sidecar.volumeMounts?.[0]?.mountPath;
        const srcs = vol?.projected?.sources || [];
        const confSrc = srcs.find((x) => x.configMap?.items?.some((i) => i.key === "stunnel.conf"));
        const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === confSrc?.configMap?.name);
        const confPath = `${mount}/${confSrc?.configMap?.items?.find((i) => i.key === "stunnel.conf").path}`;
        if (!cm?.data?.["stunnel.conf"]) fail(where, "stunnel: no ConfigMap with stunnel.conf mounted");
        else if ((sidecar.args || []).at(-1) !== confPath) fail(where, `stunnel must run ${confPath}`);
        else {
          const st = stunnelRules(`${where} stunnel.conf`, cm.data["stunnel.conf"]);
          const caSrc = srcs.find((x) => x.configMap?.name === "authrelay-redis-ca");
          const caPath = `${mount}/${caSrc?.configMap?.items?.[0]?.path}`;
          if (st.cafile !== caPath) fail(where, `stunnel CAfile ${st.cafile} is not the mounted CA ${caPath}`);
          if (env.AUTHRELAY_REDIS !== `redis://${st.accept}/0`) fail(where, `AUTHRELAY_REDIS must be redis://${st.accept}/0`);
          if (!st.accept.startsWith("127.0.0.1:")) fail(where, "stunnel must accept on loopback only (plain Redis)");
          const port = Number(st.connect.split(":").pop());
          if (!np.spec.egress.some((r) => (r.ports || []).some((p) => p.port === port)))
            fail(where, `relay egress does not allow the managed Redis's TLS port ${port}`);
        }
        // outlives the relay's drain, within the pod's grace period
        const stop = Number(sidecar.lifecycle?.preStop?.exec?.command?.at(-1) || 0);
        if (!(stop > pause + grace && stop < pod.terminationGracePeriodSeconds))
          fail(where, `stunnel preStop ${stop} s must exceed the relay's ${pause + grace} s and stay below the grace period`);
        if (!(sidecar.securityContext?.runAsUser > 0)) fail(where, "stunnel: runAsUser non-root");
        const ann = d.spec.template.metadata.annotations || {};
        if (ann["kubectl.kubernetes.io/default-container"] !== "authrelay") fail(where, "default-container must be authrelay");
      }
    } else if (sidecar) fail(where, "a stunnel sidecar outside the redis-tls overlay");
    const sts = get("StatefulSet", "redis");
    if (withRedis) {
      if (!sts) fail(where, "no Redis StatefulSet");
      else {
        hardenedPod(`${where} StatefulSet`, sts.spec.template.spec);
        // the redis.conf the init container writes: maxmemory, noeviction, under the container's memory limit
        const script = get("ConfigMap", "redis-scripts")?.data?.["init.sh"] || "";
        const redis = sts.spec.template.spec.containers.find((x) => x.name === "redis");
        redisMemory(`${where} redis-scripts init.sh`, script, redis?.resources?.limits?.memory, env.AUTHRELAY_SESSIONS_MAX);
      }
      if (!env.AUTHRELAY_REDIS_SENTINEL || !env.AUTHRELAY_REDIS_MASTER) fail(where, "relay not pointed at Sentinel");
      for (const s of (env.AUTHRELAY_REDIS_SENTINEL || "").split(",")) {
        const svc = s.split(".")[1];
        if (svc !== sts?.spec.serviceName) fail(where, `Sentinel ${s} is not a pod of Service ${sts?.spec.serviceName}`);
      }
    } else {
      if (sts) fail(where, "managed-redis still runs the Redis StatefulSet");
      if (!env.AUTHRELAY_REDIS) fail(where, "managed-redis: no AUTHRELAY_REDIS");
    }
    writeEnv(envDir, `${name}.env`, env);
  }
}

// ---- Compose -----------------------------------------------------------------------------------------------------
// compose's merge of an override file (-f a.yaml -f b.yaml): mappings merge key by key; command, entrypoint and
// healthcheck.test are replaced; other sequences (networks, secrets, volumes, tmpfs...) are joined, an entry with the
// same target (or the same value) replaced
function composeMerge(base, over, key = "") {
  if (Array.isArray(base) && Array.isArray(over)) {
    if (["command", "entrypoint", "test"].includes(key)) return over;
    const id = (x) => (x && typeof x === "object" && "target" in x ? `target:${x.target}` : JSON.stringify(x));
    const out = base.filter((b) => !over.some((o) => id(o) === id(b)));
    return [...out, ...over];
  }
  if (base && over && typeof base === "object" && typeof over === "object" && !Array.isArray(base) && !Array.isArray(over)) {
    const out = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? composeMerge(base[k], v, k) : v;
    return out;
  }
  return over;
}

function compose(envDir, specs) {
  // not in dclint's "exports": read the file from the installed package
  const schemaFile = path.join(path.dirname(new URL(import.meta.url).pathname), "node_modules/dclint/schemas/compose.schema.json");
  const Ajv = require("ajv");
  const ajv = new Ajv({ allErrors: true, strict: false });
  const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
  delete schema.$schema; // "https://json-schema.org/draft-07/schema": draft-07, Ajv's default, under another spelling
  const validate = ajv.compile(schema);
  for (const spec of specs) {
    const [label, files] = spec.split("=");
    const parts = files.split("+");
    // every file alone against the schema, then the merge (the aliases of x-relay copied, not shared)
    let doc;
    for (const f of parts) {
      const [d] = parseAll(f);
      if (!validate(d)) for (const e of validate.errors) fail(f, `schema: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
      doc = doc === undefined ? structuredClone(d) : composeMerge(doc, structuredClone(d));
    }
    if (parts.length > 1 && !validate(doc))
      for (const e of validate.errors) fail(files, `merged schema: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
    composeRules(label, path.dirname(parts[0]), files, doc, envDir);
  }
}

function composeRules(label, dir, file, doc, envDir) {
  const services = doc.services || {};
  const relays = Object.keys(services).filter((n) => /^authrelay:/.test(services[n].image || ""));
  if (relays.length < 2) fail(file, "fewer than 2 relay services");
  const relayEnv = {};
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
      for (const n of s.networks || []) if (!doc.networks?.[n]?.internal) fail(where, `relays stay on internal networks, not ${n}`);
      const env = expand(s.environment || {});
      relayEnv[name] = env;
      clientAddressRules(where, env);
      writeEnv(envDir, `${label}-${name}.env`, env);
    }
    for (const sec of s.secrets || []) if (!doc.secrets?.[sec.source]) fail(where, `undefined secret ${sec.source}`);
  }
  const published = Object.keys(services).filter((n) => services[n].ports);
  if (published.length !== 1) fail(file, `one service should publish the public port, not: ${published}`);

  // the load balancer: PROXY v2 to relays that expect it, never to their admin port (the health check)
  const pp = Object.values(relayEnv).map((e) => ["1", "true"].includes(String(e.AUTHRELAY_PROXY_PROTOCOL || "").toLowerCase()));
  const lb = services[published[0]] || {};
  const cfgMount = (lb.volumes || []).map(String).find((v) => /haproxy\.cfg:/.test(v));
  if (cfgMount) {
    const cfg = fs.readFileSync(path.join(dir, cfgMount.split(":")[0]), "utf8");
    const lines = cfg.split("\n").map((l) => l.replace(/#.*/, "").trim());
    const servers = lines.filter((l) => /^server\s/.test(l));
    const defaults = lines.filter((l) => /^default-server\s/.test(l)).join(" ");
    const sends = servers.map((l) => /\ssend-proxy-v2(\s|$)/.test(` ${l} ${defaults} `));
    if (pp.some((x) => x) && !sends.every((x) => x)) fail(file, "relays expect PROXY v2: every HAProxy server needs send-proxy-v2");
    if (!pp.some((x) => x) && sends.some((x) => x)) fail(file, "HAProxy sends PROXY v2 to relays that do not expect it");
    if (pp.some((x) => x) !== pp.every((x) => x)) fail(file, "relays disagree on AUTHRELAY_PROXY_PROTOCOL");
    if (/check-send-proxy/.test(lines.join("\n"))) fail(file, "HAProxy must not send PROXY on health checks (admin port)");
    const adminPort = Number((Object.values(relayEnv)[0]?.AUTHRELAY_ADMIN_LISTEN || "").split(":").pop());
    for (const l of servers) {
      const m = /\sport\s+(\d+)/.exec(` ${l} ${defaults} `);
      if (!m || Number(m[1]) !== adminPort) fail(file, `HAProxy's health check must go to the admin port ${adminPort}: ${l}`);
    }
  }

  // Redis: a local redis-server with maxmemory + noeviction, or stunnel to a managed one (compose.redis-tls.yaml)
  const redisUrl = Object.values(relayEnv)[0]?.AUTHRELAY_REDIS || "";
  const redisName = /^redis:\/\/([^:/@]+):(\d+)/.exec(redisUrl);
  const redis = redisName ? services[redisName[1]] : undefined;
  if (!redis) fail(file, `the relays' Redis ${redisUrl} is not a service`);
  else if (/^authrelay-stunnel:/.test(redis.image || "")) {
    const conf = (redis.volumes || []).map(String).find((v) => v.split(":")[1] === (redis.command || []).at(-1));
    if (!conf) fail(file, "stunnel: its configuration file is not mounted where its command says");
    else {
      const st = stunnelRules(`${file} ${conf.split(":")[0]}`, fs.readFileSync(path.join(dir, conf.split(":")[0]), "utf8"));
      if (Number(st.accept.split(":").pop()) !== Number(redisName[2])) fail(file, `stunnel accepts on ${st.accept}, not the relays' port`);
      if (!(redis.secrets || []).some((x) => x.target === st.cafile)) fail(file, `stunnel: no CA mounted at ${st.cafile}`);
    }
    if (!(redis.networks || []).some((n) => !doc.networks?.[n]?.internal)) fail(file, "stunnel needs a network with a way out");
  } else {
    const cmd = [].concat(redis.entrypoint || [], redis.command || []).join("\n");
    if (!/redis-server/.test(cmd)) fail(file, `service ${redisName[1]} runs neither redis-server nor stunnel`);
    const sessionsMax = Math.max(...Object.values(relayEnv).map((e) => Number(e.AUTHRELAY_SESSIONS_MAX || 100000)));
    redisMemory(`${file} service ${redisName[1]}`, cmd, redis.deploy?.resources?.limits?.memory, sessionsMax);
  }
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
else if (cmd === "policy") policy(args[0], args.slice(1));
else if (cmd === "compose") compose(args[0], args.slice(1));
else if (cmd === "envfile") envfile(args[0], args[1]);
else if (cmd === "redisconf") redisconf(args[0]);
else if (cmd === "stunnel") stunnel(args[0], args[1]);
else {
  console.error(
    "usage: node validate.mjs k8s FILE... | policy ENVDIR NAME=FILE... | compose ENVDIR NAME=FILE[+OVERRIDE]... | " +
      "envfile FILE ENVDIR | redisconf FILE | stunnel K8S.conf COMPOSE.conf",
  );
  process.exit(2);
}
if (failures) {
  console.error(`${failures} problem(s)`);
  process.exit(1);
}
