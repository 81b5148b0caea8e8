package main

// Disk consolidation, which vcsim 0.24 lacks, and the failure that needs it
// (docs/vcsim-harness.md "Consolidation"):
//
//   POST /snapshots/fail-leaving-deltas {"moref":"snapshot-N","count":1}
//        arms a half-done removal: the next RemoveSnapshot_Task of that
//        snapshot takes it out of the snapshot tree but leaves its delta
//        disks in the chain, sets runtime.consolidationNeeded and fails
//        (GenericVmConfigFault), as a vSphere removal that died mid-way does.
//        count -1: every removal of it, until DELETE /snapshots/fail-leaving-deltas.
//   ConsolidateVMDisks_Task
//        merges every delta that no remaining snapshot claims into its parent
//        (CID-checked like a removal), then clears runtime.consolidationNeeded.

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type halfRemovalTable struct {
	mu    sync.Mutex
	armed map[string]int // snapshot moref -> remaining (-1: unlimited)
}

var halfRemovals = &halfRemovalTable{armed: map[string]int{}}

func (t *halfRemovalTable) take(moref string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.armed[moref]
	if !ok {
		return false
	}
	if n > 0 {
		n--
		if n == 0 {
			delete(t.armed, moref)
		} else {
			t.armed[moref] = n
		}
	}
	return true
}

func (h *harness) consolidateControl(mux *http.ServeMux) {
	mux.HandleFunc("/snapshots/fail-leaving-deltas", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			var req struct {
				Moref string `json:"moref"`
				Count *int   `json:"count,omitempty"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Moref == "" {
				writeJSON(w, 400, map[string]string{"error": "give {\"moref\": \"snapshot-N\", \"count\": N}"})
				return
			}
			n := 1
			if req.Count != nil {
				n = *req.Count
			}
			if n == 0 || n < -1 {
				writeJSON(w, 400, map[string]string{"error": "count must be >= 1, or -1 for unlimited"})
				return
			}
			halfRemovals.mu.Lock()
			halfRemovals.armed[req.Moref] = n
			halfRemovals.mu.Unlock()
			writeJSON(w, 201, map[string]bool{"ok": true})
		case http.MethodDelete:
			halfRemovals.mu.Lock()
			halfRemovals.armed = map[string]int{}
			halfRemovals.mu.Unlock()
			writeJSON(w, 200, map[string]bool{"ok": true})
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}

// hookRemoveOrHalfRemove: RemoveSnapshot_Task and RemoveAllSnapshots_Task;
// a removal armed by /snapshots/fail-leaving-deltas fails half-way.
func (h *harness) hookRemoveOrHalfRemove(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	if m.Name == "RemoveSnapshot_Task" && halfRemovals.take(m.This.Value) {
		h.halfRemoveSnapshot(w, r, body, m)
		return
	}
	h.hookRemoveSnapshot(w, r, body, m)
}

func (h *harness) halfRemoveSnapshot(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	vm, snap, ok := h.snapshotTarget(m)
	if vm == nil || !ok {
		h.forward(h.inner, w, r, body)
		return
	}
	// The simulator deletes a removed snapshot's files by layoutEx key; keep
	// them (see hookRemoveSnapshot) and drop the .vmsn by name below.
	simulator.Map.WithLock(vm, func() {
		for i := range vm.LayoutEx.Snapshot {
			if vm.LayoutEx.Snapshot[i].Key == snap {
				vm.LayoutEx.Snapshot[i].DataKey = -1
				vm.LayoutEx.Snapshot[i].MemoryKey = -1
			}
		}
	})
	h.shieldVM(vm)
	rec := h.recorded(r, body)
	h.unshieldVM(vm)
	if task := recordedTask(rec); task == nil || task.Info.State != types.TaskInfoStateSuccess {
		copyRecorded(w, rec)
		return
	}
	h.snapMu.Lock()
	if f := h.vmsn[snap.Value]; f != "" {
		if p, err := h.localPath(f); err == nil {
			os.Remove(p)
		}
	}
	delete(h.vmsn, snap.Value)
	delete(h.snapState, snap.Value) // its delta is claimed by no snapshot now
	h.snapMu.Unlock()
	needed := true
	simulator.Map.WithLock(vm, func() {
		vm.Runtime.ConsolidationNeeded = &needed
		h.refreshLayout(vm)
	})
	msg := fmt.Sprintf("vcsim harness: %s removed from the snapshot tree, its delta disks were left (consolidation needed)", snap.Value)
	log.Printf("%s: %s", vm.Name, msg)
	failedTask(w, m.Name, m.This, &types.GenericVmConfigFault{Reason: msg}, msg)
}

// hookConsolidate: ConsolidateVMDisks_Task on a VM.
func (h *harness) hookConsolidate(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	vm := vmByRef(m.This)
	if vm == nil {
		writeFault(w, "The object has already been deleted or has not been completely created", &types.ManagedObjectNotFound{Obj: m.This})
		return
	}
	claimed := map[string]bool{}
	if vm.Snapshot != nil {
		for _, s := range allSnapshots(vm.Snapshot.RootSnapshotList) {
			for _, f := range h.stateOf(s) {
				claimed[f] = true
			}
		}
	}
	var ferr error
	merged := 0
	simulator.Map.WithLock(vm, func() {
		backings := map[int32]*types.VirtualDiskFlatVer2BackingInfo{}
	disks:
		for _, disk := range disksOf(vm) {
			b := flatBacking(disk)
			if b == nil {
				continue
			}
			links := chainOf(b)
			changed := false
			for i := 0; i+1 < len(links); {
				if claimed[links[i+1].file] {
					i++
					continue
				}
				parent, _ := h.localPath(links[i+1].file)
				delta, _ := h.localPath(links[i].file)
				if err := checkLink(parent, delta); err != nil {
					ferr = err
				} else if err := consolidate(parent, delta); err != nil {
					ferr = fmt.Errorf("consolidating %s: %w", links[i].file, err)
				}
				if ferr != nil {
					if changed {
						backings[disk.Key] = buildChain(links)
					}
					break disks
				}
				if i > 0 { // a later delta now descends from the parent
					child, _ := h.localPath(links[i-1].file)
					if err := reparent(child, parent); err != nil {
						log.Printf("reparenting %s: %v", links[i-1].file, err)
					}
				}
				h.renameState(disk.Key, links[i].file, links[i+1].file)
				links = append(links[:i], links[i+1:]...)
				changed = true
				merged++
			}
			if changed {
				backings[disk.Key] = buildChain(links)
			}
		}
		replaceBackings(vm, backings)
		h.refreshLayout(vm)
		if ferr == nil {
			done := false
			vm.Runtime.ConsolidationNeeded = &done
		}
	})
	if ferr != nil {
		log.Printf("ConsolidateVMDisks_Task on %s: %v", vm.Name, ferr)
		failedTask(w, m.Name, m.This, &types.GenericVmConfigFault{Reason: ferr.Error()}, ferr.Error())
		return
	}
	task := simulator.CreateTask(m.This, "consolidateVMDisks", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, nil
	})
	log.Printf("%s: ConsolidateVMDisks_Task merged %d delta(s)", vm.Name, merged)
	writeResult(w, m.Name, &taskReturn{Returnval: task.Run()})
}
