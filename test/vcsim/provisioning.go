package main

// POST /disks/provisioning {"vm","type":"thin"|"thick-lazy"|"thick-eager"}:
// sets the provisioning every flat disk of the VM reports in its backing
// (thinProvisioned, eagerlyScrub). vcsim's VMs have thin disks; restores
// choose SAN only for thick ones, so SAN tests make their VM's disks thick.
// (vCenter converts with InflateVirtualDisk; the disk files here are the same.)

import (
	"encoding/json"
	"net/http"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func (h *harness) provisioningControl(mux *http.ServeMux) {
	mux.HandleFunc("/disks/provisioning", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			VM   string `json:"vm"`
			Type string `json:"type"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		thin, eager := false, false
		switch req.Type {
		case "thin":
			thin = true
		case "thick-lazy":
		case "thick-eager":
			eager = true
		default:
			writeJSON(w, 400, map[string]string{"error": "type must be thin, thick-lazy or thick-eager"})
			return
		}
		vm := vmByRef(types.ManagedObjectReference{Type: "VirtualMachine", Value: req.VM})
		if vm == nil {
			writeJSON(w, 404, map[string]string{"error": "no VM " + req.VM})
			return
		}
		n := 0
		simulator.Map.WithLock(vm, func() {
			for _, d := range disksOf(vm) {
				if b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					b.ThinProvisioned = types.NewBool(thin)
					b.EagerlyScrub = types.NewBool(eager)
					n++
				}
			}
		})
		writeJSON(w, 200, map[string]int{"disks": n})
	})
}
