#!/usr/bin/env bash
# The service's main job end to end on local defaults: sets up everything
# (Debian packages, npm, build, project-local Postgres and Redis, the vcsim
# harness), then
#   1. starts the vCenter simulator, whose VM disks are real files;
#   2. makes a backup chain for one of its VMs (a full and 3 incrementals);
#   3. starts the API and a worker;
#   4. creates a tenant and an API key, registers the simulator as a vCenter;
#   5. restores the VM in place to the newest point, watching the progress;
#   6. checks the VM's disk against the point, byte for byte.
# Stops what it started on exit. Logs: .run/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
set -a; . .run/env; set +a
DEMO="$PWD/.run/demo"
rm -rf "$DEMO"; mkdir -p "$DEMO"
CLI="node apps/cli/dist/main.js"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say "starting the vCenter simulator"
test/vcsim/bin/vcsim-harness -dir "$DEMO/datastores" -username demo -password "demo-$(date +%s)" >"$DEMO/vcsim.json" 2>"$DEMO/vcsim.log" & pids+=($!)
for _ in $(seq 1 100); do [ -s "$DEMO/vcsim.json" ] && break; sleep 0.1; done
SIM=$(head -1 "$DEMO/vcsim.json")
jq_() { node -e "const o=JSON.parse(process.argv[1]);console.log(eval('o.'+process.argv[2]))" "$SIM" "$1"; }
VC_URL=$(jq_ url); VC_USER=$(jq_ username); VC_PASS=$(jq_ password); VC_THUMB=$(jq_ thumbprintSha256)
DATASTORES=$(node -e "const o=JSON.parse(process.argv[1]);console.log(Object.entries(o.datastores).map(([k,v])=>k+'='+v).join(';'))" "$SIM")
echo "vCenter simulator at $VC_URL (datastores: $DATASTORES)"

PORT=$(free_port)
export VMRESTORE_PORT="$PORT" VMRESTORE_QUEUE_PREFIX="demo" LOG_LEVEL=info \
  VMRESTORE_BACKUP_ROOTS="$DEMO/backups" VMRESTORE_DATASTORE_PATHS="$DATASTORES" \
  VMRESTORE_WORK_DIR="$DEMO/work"
API="http://127.0.0.1:$PORT"

say "finding the VM and making its backups"
VM_MOREF=$(node -e '
  const { vsphere } = require("./apps/core/dist");
  (async () => {
    const c = await vsphere.VSphereClient.connect({ url: process.argv[1], username: process.argv[2], password: process.argv[3], thumbprint: process.argv[4], keepAliveMs: 0 });
    const ref = await vsphere.findVm(c, { inventoryPath: "DC0/vm/DC0_H0_VM0" });
    const info = await vsphere.getVmInfo(c, ref);
    require("fs").writeFileSync(process.argv[5], JSON.stringify(info.disks.map((d) => ({ key: d.key, capacityBytes: d.capacityInBytes }))));
    console.log(ref.value);
    await c.close();
  })().catch((e) => { console.error(e.message); process.exit(1); });
' "$VC_URL" "$VC_USER" "$VC_PASS" "$VC_THUMB" "$DEMO/disks.json")
node -e '
  const { generateFixtureChain } = require("./apps/core/dist");
  generateFixtureChain({ root: process.argv[1], vmId: "web01", disks: JSON.parse(require("fs").readFileSync(process.argv[2], "utf8")), incrementals: 3, seed: 2026, expectedImagesDir: process.argv[3] })
    .then((c) => console.log("backups of web01: " + c.points.map((p) => p.pointId + " (" + p.manifest.kind + ")").join(", ")));
' "$DEMO/backups" "$DEMO/disks.json" "$DEMO/expected"
echo "VM DC0_H0_VM0 is $VM_MOREF"

say "starting the API on $API and a worker (logs in $DEMO)"
node apps/api/dist/server.js >"$DEMO/api.log" 2>&1 & pids+=($!)
node apps/worker/dist/main.js >"$DEMO/worker.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -fs "$API/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$API/readyz"; echo
echo "API docs: $API/docs"

say "a tenant, an API key, and the vCenter"
TENANT="demo-$(date +%s)"
$CLI admin tenant create "$TENANT" >/dev/null
export VMRESTORE_API_KEY=$($CLI admin key create --tenant "$TENANT" --name demo --scopes restores:read,restores:write,backups:read,admin --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')
curl -fsS "$API/v1/vcenters" -H "authorization: Bearer $VMRESTORE_API_KEY" -H 'content-type: application/json' \
  -d "{\"name\":\"lab\",\"url\":\"$VC_URL\",\"username\":\"$VC_USER\",\"password\":\"$VC_PASS\",\"thumbprint\":\"$VC_THUMB\"}" >/dev/null
echo "tenant $TENANT, vCenter \"lab\" registered (its password is stored encrypted)"
$CLI --api "$API" points web01

say "restoring DC0_H0_VM0 in place to web01@p3"
set +e
$CLI --api "$API" submit --kind in_place --vcenter lab --source-vm web01 --point p3 --target-vm "$VM_MOREF" \
  --transports file --label "demo restore" --watch --interval 200
code=$?
set -e
[ "$code" -eq 0 ] || { echo "the restore did not succeed (exit $code); see $DEMO/worker.log"; exit "$code"; }

say "checking the disk against the restore point"
node -e '
  const { vsphere } = require("./apps/core/dist");
  const fs = require("fs"), path = require("path");
  const [url, user, pass, thumb, moref, dsmap, expected] = process.argv.slice(1);
  const dirs = Object.fromEntries(dsmap.split(";").map((e) => e.split("=")));
  (async () => {
    const c = await vsphere.VSphereClient.connect({ url, username: user, password: pass, thumbprint: thumb, keepAliveMs: 0 });
    const info = await vsphere.getVmInfo(c, { type: "VirtualMachine", value: moref });
    await c.close();
    let ok = true;
    for (const d of info.disks) {
      const m = /^\[([^\]]+)\]\s*(.+)$/.exec(d.fileName);
      const descriptor = path.join(dirs[m[1]], m[2]);
      const flat = path.join(path.dirname(descriptor), /FLAT "([^"]+)"/.exec(fs.readFileSync(descriptor, "utf8"))[1]);
      const want = fs.readFileSync(path.join(expected, "p3", "disk-" + d.key + ".raw"));
      const got = fs.readFileSync(flat).subarray(0, want.length);
      const same = got.equals(want);
      ok = ok && same;
      console.log(`disk ${d.key} (${d.fileName}): ${want.length} bytes, ${same ? "identical to web01@p3" : "DIFFERENT"}; VM is ${info.powerState}`);
    }
    process.exit(ok ? 0 : 1);
  })().catch((e) => { console.error(e.message); process.exit(1); });
' "$VC_URL" "$VC_USER" "$VC_PASS" "$VC_THUMB" "$VM_MOREF" "$DATASTORES" "$DEMO/expected"
