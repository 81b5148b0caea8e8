package main

// Snapshot operations on real delta disks (docs/disk-model.md "Snapshot
// operations"). The simulator keeps the snapshot tree; these hooks do the
// files and the disk backings around it:
//
//   CreateSnapshot  per disk: <base>-00000N.vmdk = sparse copy of the top,
//                   parentCID = top's CID; backing.fileName = the delta,
//                   backing.parent = the old backing.
//   Revert          remake the snapshot's delta from its parent.
//   Remove          consolidate the delta into its parent; fails with
//                   "CID mismatch" when delta.parentCID != parent's CID.
//
// Snapshot trees are supported as linear chains (each snapshot taken from
// the latest one), which is what restores do; reverting to a snapshot that
// has later snapshots answers NotSupported.

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// hookCreateOrReconfigure: CreateVM_Task, ReconfigVM_Task, CloneVM_Task.
// RDM disks in the spec are checked and shielded (rdm.go); afterwards every
// disk of the VM gets real files (new disks were only empty placeholders).
func (h *harness) hookCreateOrReconfigure(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	if spec, reencode := specRequest(m); spec != nil {
		changed, fault, msg := h.rewriteSpecRDMs(spec)
		if fault != nil {
			failedTask(w, m.Name, m.This, fault, msg)
			return
		}
		if changed {
			b, err := reencode()
			if err != nil {
				failedTask(w, m.Name, m.This, &types.SystemError{Reason: err.Error()}, err.Error())
				return
			}
			body = b
		}
	}
	src := vmByRef(m.This) // the VM of ReconfigVM / the source of CloneVM
	h.shieldVM(src)
	rec := h.recorded(r, body)
	h.unshieldVM(src)
	if task := recordedTask(rec); task != nil && task.Info.State == types.TaskInfoStateSuccess {
		var ref types.ManagedObjectReference
		switch m.Name {
		case "ReconfigVM_Task":
			ref = m.This
		default: // CreateVM_Task, CloneVM_Task return the new VM
			if res, ok := task.Info.Result.(types.ManagedObjectReference); ok {
				ref = res
			}
		}
		if vm := vmByRef(ref); vm != nil {
			h.unshieldVM(vm)
			simulator.Map.WithLock(vm, func() {
				if err := h.ensureDisks(vm); err != nil {
					log.Printf("%s on %s: %v", m.Name, vm.Name, err)
				}
				h.refreshLayout(vm)
			})
		}
	}
	copyRecorded(w, rec)
}

func (h *harness) hookCreateSnapshot(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	vm := vmByRef(m.This)
	if vm == nil {
		h.forward(h.inner, w, r, body)
		return
	}
	// Make the delta files first: if that fails, the snapshot is not taken.
	type made struct {
		key         int32
		links       []chainLink
		delta, prev string
	}
	var plan []made
	var ferr error
	simulator.Map.WithLock(vm, func() {
		if ferr = h.ensureDisks(vm); ferr != nil {
			return
		}
		for _, disk := range disksOf(vm) {
			b := flatBacking(disk)
			if b == nil {
				continue
			}
			delta, err := h.nextDeltaName(b.FileName)
			if err != nil {
				ferr = err
				return
			}
			top, _ := h.localPath(b.FileName)
			dlocal, _ := h.localPath(delta)
			if err := createDelta(top, dlocal); err != nil {
				ferr = fmt.Errorf("creating %s: %w", delta, err)
				return
			}
			plan = append(plan, made{key: disk.Key, links: chainOf(b), delta: delta, prev: b.FileName})
		}
	})
	undo := func() {
		for _, p := range plan {
			if l, err := h.localPath(p.delta); err == nil {
				removeDisk(l)
			}
		}
	}
	if ferr != nil {
		undo()
		failedTask(w, m.Name, m.This, &types.FileFault{}, ferr.Error())
		return
	}

	rec := h.recorded(r, body)
	task := recordedTask(rec)
	if task == nil || task.Info.State != types.TaskInfoStateSuccess {
		undo()
		copyRecorded(w, rec)
		return
	}
	snap, _ := task.Info.Result.(types.ManagedObjectReference)
	state := map[int32]string{}
	backings := map[int32]*types.VirtualDiskFlatVer2BackingInfo{}
	for _, p := range plan {
		top := *p.links[0].backing
		top.FileName = p.delta
		top.Uuid = p.links[0].backing.Uuid
		links := append([]chainLink{{backing: &top, file: p.delta}}, p.links...)
		backings[p.key] = buildChain(links)
		state[p.key] = p.prev
	}
	vmsn := ""
	simulator.Map.WithLock(vm, func() {
		replaceBackings(vm, backings)
		// Remember the snapshot's .vmsn by name (see hookRemoveSnapshot).
		for _, sl := range vm.LayoutEx.Snapshot {
			if sl.Key == snap {
				for _, f := range vm.LayoutEx.File {
					if f.Key == sl.DataKey {
						vmsn = f.Name
					}
				}
			}
		}
		h.refreshLayout(vm)
	})
	h.snapMu.Lock()
	h.snapState[snap.Value] = state
	h.vmsn[snap.Value] = vmsn
	h.snapMu.Unlock()
	log.Printf("%s: snapshot %s created, %d delta disk(s)", vm.Name, snap.Value, len(plan))
	copyRecorded(w, rec)
}

// snapshotTarget resolves the snapshot a revert/remove call is about and its VM.
func (h *harness) snapshotTarget(m *simulator.Method) (*simulator.VirtualMachine, types.ManagedObjectReference, bool) {
	if vm := vmByRef(m.This); vm != nil { // RevertToCurrentSnapshot_Task, RemoveAllSnapshots_Task
		if vm.Snapshot == nil || vm.Snapshot.CurrentSnapshot == nil {
			return vm, types.ManagedObjectReference{}, false
		}
		return vm, *vm.Snapshot.CurrentSnapshot, true
	}
	s, ok := simulator.Map.Get(m.This).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return nil, types.ManagedObjectReference{}, false
	}
	return vmByRef(s.Vm), m.This, true
}

// deltaOf finds, in a disk's chain, the delta made when the snapshot whose
// state is stateFile was taken: the link whose parent is stateFile.
func deltaOf(links []chainLink, stateFile string) int {
	for i := 0; i+1 < len(links); i++ {
		if links[i+1].file == stateFile {
			return i
		}
	}
	return -1
}

func (h *harness) stateOf(snap types.ManagedObjectReference) map[int32]string {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	return h.snapState[snap.Value]
}

func (h *harness) hookRevertSnapshot(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	vm, snap, ok := h.snapshotTarget(m)
	if vm == nil || !ok {
		h.forward(h.inner, w, r, body)
		return
	}
	state := h.stateOf(snap)
	type redo struct{ parent, delta string }
	var plan []redo
	for _, disk := range disksOf(vm) {
		b := flatBacking(disk)
		if b == nil || state[disk.Key] == "" {
			continue
		}
		links := chainOf(b)
		i := deltaOf(links, state[disk.Key])
		if i < 0 {
			continue
		}
		if i != 0 {
			failedTask(w, m.Name, m.This, &types.NotSupported{},
				"vcsim harness: revert to a snapshot that has later snapshots is not supported (linear chains only)")
			return
		}
		plan = append(plan, redo{parent: links[1].file, delta: links[0].file})
	}
	rec := h.recorded(r, body)
	if task := recordedTask(rec); task != nil && task.Info.State == types.TaskInfoStateSuccess {
		for _, p := range plan {
			parent, _ := h.localPath(p.parent)
			delta, _ := h.localPath(p.delta)
			removeDisk(delta)
			if err := createDelta(parent, delta); err != nil {
				log.Printf("revert %s: %v", p.delta, err)
			}
		}
		log.Printf("%s: reverted to %s, %d delta disk(s) remade", vm.Name, snap.Value, len(plan))
	}
	copyRecorded(w, rec)
}

// hookRemoveSnapshot handles RemoveSnapshot_Task (This = snapshot,
// removeChildren) and RemoveAllSnapshots_Task (This = VM): every delta to
// consolidate is CID-checked before anything changes.
func (h *harness) hookRemoveSnapshot(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	vm, _, ok := h.snapshotTarget(m)
	if vm == nil || !ok {
		h.forward(h.inner, w, r, body)
		return
	}
	// Snapshots to remove, latest first.
	var snaps []types.ManagedObjectReference
	if m.Name == "RemoveAllSnapshots_Task" {
		snaps = allSnapshots(vm.Snapshot.RootSnapshotList)
	} else {
		req := m.Body.(*types.RemoveSnapshot_Task)
		t := findTree(vm.Snapshot.RootSnapshotList, m.This)
		if t == nil {
			h.forward(h.inner, w, r, body)
			return
		}
		if req.RemoveChildren {
			snaps = allSnapshots(t.ChildSnapshotList)
		}
		snaps = append(snaps, m.This)
	}
	// Order them by position in the chain, topmost delta first, so each
	// consolidation works on the chain the previous one left.
	type step struct {
		key   int32
		state string
	}
	var steps []step
	for _, disk := range disksOf(vm) {
		b := flatBacking(disk)
		if b == nil {
			continue
		}
		links := chainOf(b)
		for i := 0; i+1 < len(links); i++ { // top first
			if m.Name == "RemoveAllSnapshots_Task" {
				// Everything collapses into the base disk.
				steps = append(steps, step{key: disk.Key, state: links[i+1].file})
				continue
			}
			for _, s := range snaps {
				if st := h.stateOf(s)[disk.Key]; st == links[i+1].file {
					steps = append(steps, step{key: disk.Key, state: st})
				}
			}
		}
		// Check every link that will be consolidated.
		for _, s := range steps {
			if s.key != disk.Key {
				continue
			}
			i := deltaOf(links, s.state)
			parent, _ := h.localPath(links[i+1].file)
			delta, _ := h.localPath(links[i].file)
			if err := checkLink(parent, delta); err != nil {
				log.Printf("%s on %s: %v", m.Name, vm.Name, err)
				failedTask(w, m.Name, m.This, &types.GenericVmConfigFault{Reason: err.Error()}, err.Error())
				return
			}
		}
	}

	// The simulator deletes a removed snapshot's files by layoutEx.file key,
	// but its RefreshStorageInfo renumbers those keys, so the keys it would
	// use may name a disk by now. Take the keys away and delete the .vmsn
	// files by name afterwards.
	simulator.Map.WithLock(vm, func() {
		for i := range vm.LayoutEx.Snapshot {
			for _, s := range snaps {
				if vm.LayoutEx.Snapshot[i].Key == s {
					vm.LayoutEx.Snapshot[i].DataKey = -1
					vm.LayoutEx.Snapshot[i].MemoryKey = -1
				}
			}
		}
	})

	h.shieldVM(vm) // the simulator's removal refreshes the disk layout
	rec := h.recorded(r, body)
	h.unshieldVM(vm)
	task := recordedTask(rec)
	if task == nil || task.Info.State != types.TaskInfoStateSuccess {
		copyRecorded(w, rec)
		return
	}
	h.snapMu.Lock()
	for _, s := range snaps {
		if f := h.vmsn[s.Value]; f != "" {
			if p, err := h.localPath(f); err == nil {
				os.Remove(p)
			}
		}
		delete(h.vmsn, s.Value)
	}
	h.snapMu.Unlock()
	simulator.Map.WithLock(vm, func() {
		backings := map[int32]*types.VirtualDiskFlatVer2BackingInfo{}
		for _, disk := range disksOf(vm) {
			b := flatBacking(disk)
			if b == nil {
				continue
			}
			links := chainOf(b)
			changed := false
			for _, s := range steps {
				if s.key != disk.Key {
					continue
				}
				i := deltaOf(links, s.state)
				if i < 0 {
					continue
				}
				parent, _ := h.localPath(links[i+1].file)
				delta, _ := h.localPath(links[i].file)
				if err := consolidate(parent, delta); err != nil {
					log.Printf("consolidating %s: %v", links[i].file, err)
					continue
				}
				if i > 0 { // a later delta now descends from the parent
					child, _ := h.localPath(links[i-1].file)
					if err := reparent(child, parent); err != nil {
						log.Printf("reparenting %s: %v", links[i-1].file, err)
					}
				}
				// Snapshots taken while the delta was the top now have their
				// state in the parent it was merged into.
				h.renameState(disk.Key, links[i].file, links[i+1].file)
				links = append(links[:i], links[i+1:]...)
				changed = true
			}
			if changed {
				backings[disk.Key] = buildChain(links)
			}
		}
		replaceBackings(vm, backings)
		h.refreshLayout(vm)
	})
	h.snapMu.Lock()
	for _, s := range snaps {
		delete(h.snapState, s.Value)
	}
	h.snapMu.Unlock()
	log.Printf("%s: %s consolidated %d delta(s)", vm.Name, m.Name, len(steps))
	copyRecorded(w, rec)
}

func (h *harness) renameState(key int32, from, to string) {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	for _, st := range h.snapState {
		if st[key] == from {
			st[key] = to
		}
	}
}

func allSnapshots(tree []types.VirtualMachineSnapshotTree) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	for _, t := range tree {
		out = append(out, allSnapshots(t.ChildSnapshotList)...)
		out = append(out, t.Snapshot)
	}
	return out
}

func findTree(tree []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) *types.VirtualMachineSnapshotTree {
	for i := range tree {
		if tree[i].Snapshot == ref {
			return &tree[i]
		}
		if t := findTree(tree[i].ChildSnapshotList, ref); t != nil {
			return t
		}
	}
	return nil
}
