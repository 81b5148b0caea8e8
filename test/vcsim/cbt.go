package main

// Changed block tracking for the live VMs (QueryChangedDiskAreas). The
// harness does not watch the disk files: tests declare what changed, the way
// a guest's writes would be tracked by ESXi:
//
//   POST /cbt          {"vm","disk","changeId"}  turn CBT on for the VM and make
//                      changeId the disk's current one (the state a backup saw)
//   POST /cbt/changes  {"vm","disk","areas":[{"start","length"}]}  areas written
//                      since; the disk's changeId moves to the next sequence
//   POST /cbt/reset    {"vm","disk"}  a CBT reset (storage vMotion, a resize,
//                      CBT turned off and on): every earlier changeId is stale
//   POST /cbt/disable  {"vm"}  changeTrackingEnabled=false
//   POST /cbt/page     {"bytes"}  how much of the disk one answer covers
//
// QueryChangedDiskAreas answers like vCenter: a FileFault for a changeId of
// another tracking epoch or from the future, for a disk whose capacity
// changed since, or for a VM without CBT; without a snapshot it only
// answers for a powered-off VM; each answer covers one page of the disk
// (DiskChangeInfo.startOffset/length), the caller continues from its end.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type cbtChange struct {
	seq   int
	areas []types.DiskChangeExtent
}

type cbtDisk struct {
	uuid     string
	seq      int
	capacity int64
	changes  []cbtChange
}

type cbtState struct {
	mu        sync.Mutex
	disks     map[string]*cbtDisk // "vm-42/2000"
	pageBytes int64
}

func cbtKey(vm string, disk int32) string { return fmt.Sprintf("%s/%d", vm, disk) }

func (d *cbtDisk) changeID() string { return fmt.Sprintf("%s/%d", d.uuid, d.seq) }

func newTrackingUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	// vCenter's shape: "52 3c 8a 1f 9e 0b 44 d2-a7 61 0e 5c 3b 28 f9 07"
	var parts []string
	for i := 0; i < 32; i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
}

func parseChangeID(id string) (uuid string, seq int, ok bool) {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return id[:i], n, true
}

// vmDisk finds a VM's disk by device key.
func vmDisk(vm *simulator.VirtualMachine, key int32) *types.VirtualDisk {
	for _, d := range disksOf(vm) {
		if d.Key == key {
			return d
		}
	}
	return nil
}

// setTracking turns CBT on or off on the VM and shows each tracked disk's
// current changeId in its backing, as vCenter does.
func (h *harness) setTracking(vm *simulator.VirtualMachine, on bool) {
	h.cbt.mu.Lock()
	defer h.cbt.mu.Unlock()
	simulator.Map.WithLock(vm, func() {
		vm.Config.ChangeTrackingEnabled = types.NewBool(on)
		for _, d := range disksOf(vm) {
			b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			b.ChangeId = ""
			if st := h.cbt.disks[cbtKey(vm.Self.Value, d.Key)]; on && st != nil {
				b.ChangeId = st.changeID()
			}
		}
	})
}

type cbtRequest struct {
	VM       string                   `json:"vm"`
	Disk     int32                    `json:"disk"`
	ChangeID string                   `json:"changeId"`
	Areas    []types.DiskChangeExtent `json:"areas"`
	Bytes    int64                    `json:"bytes"`
}

func (h *harness) cbtControl(mux *http.ServeMux) {
	handle := func(path string, fn func(req cbtRequest, vm *simulator.VirtualMachine) (interface{}, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			var req cbtRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				writeJSON(w, 400, map[string]string{"error": err.Error()})
				return
			}
			var vm *simulator.VirtualMachine
			if path != "/cbt/page" {
				vm = vmByRef(types.ManagedObjectReference{Type: "VirtualMachine", Value: req.VM})
				if vm == nil {
					writeJSON(w, 404, map[string]string{"error": "no VM " + req.VM})
					return
				}
				if path != "/cbt/disable" && vmDisk(vm, req.Disk) == nil {
					writeJSON(w, 404, map[string]string{"error": fmt.Sprintf("%s has no disk %d", req.VM, req.Disk)})
					return
				}
			}
			out, err := fn(req, vm)
			if err != nil {
				writeJSON(w, 400, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, 200, out)
		})
	}
	handle("/cbt", func(req cbtRequest, vm *simulator.VirtualMachine) (interface{}, error) {
		uuid, seq, ok := parseChangeID(req.ChangeID)
		if !ok {
			return nil, fmt.Errorf("changeId %q is not uuid/sequence", req.ChangeID)
		}
		h.cbt.mu.Lock()
		d := &cbtDisk{uuid: uuid, seq: seq, capacity: vmDisk(vm, req.Disk).CapacityInBytes}
		h.cbt.disks[cbtKey(req.VM, req.Disk)] = d
		h.cbt.mu.Unlock()
		h.setTracking(vm, true)
		return map[string]string{"changeId": d.changeID()}, nil
	})
	handle("/cbt/changes", func(req cbtRequest, vm *simulator.VirtualMachine) (interface{}, error) {
		h.cbt.mu.Lock()
		d := h.cbt.disks[cbtKey(req.VM, req.Disk)]
		if d == nil {
			h.cbt.mu.Unlock()
			return nil, fmt.Errorf("CBT is not tracking %s disk %d: POST /cbt first", req.VM, req.Disk)
		}
		for _, a := range req.Areas {
			if a.Start < 0 || a.Length <= 0 || a.Start+a.Length > d.capacity {
				h.cbt.mu.Unlock()
				return nil, fmt.Errorf("area %d+%d is outside the disk (%d bytes)", a.Start, a.Length, d.capacity)
			}
		}
		d.seq++
		d.changes = append(d.changes, cbtChange{seq: d.seq, areas: req.Areas})
		id := d.changeID()
		h.cbt.mu.Unlock()
		h.setTracking(vm, true)
		return map[string]string{"changeId": id}, nil
	})
	handle("/cbt/reset", func(req cbtRequest, vm *simulator.VirtualMachine) (interface{}, error) {
		h.cbt.mu.Lock()
		d := &cbtDisk{uuid: newTrackingUUID(), seq: 1, capacity: vmDisk(vm, req.Disk).CapacityInBytes}
		h.cbt.disks[cbtKey(req.VM, req.Disk)] = d
		h.cbt.mu.Unlock()
		h.setTracking(vm, true)
		return map[string]string{"changeId": d.changeID()}, nil
	})
	handle("/cbt/disable", func(req cbtRequest, vm *simulator.VirtualMachine) (interface{}, error) {
		h.setTracking(vm, false)
		return map[string]bool{"ok": true}, nil
	})
	handle("/cbt/page", func(req cbtRequest, _ *simulator.VirtualMachine) (interface{}, error) {
		if req.Bytes < 1024*1024 {
			return nil, fmt.Errorf("page must be at least 1 MiB")
		}
		h.cbt.mu.Lock()
		h.cbt.pageBytes = req.Bytes
		h.cbt.mu.Unlock()
		return map[string]int64{"bytes": req.Bytes}, nil
	})
}

// hookQueryChangedDiskAreas answers QueryChangedDiskAreas from the declared changes.
func (h *harness) hookQueryChangedDiskAreas(w http.ResponseWriter, r *http.Request, _ []byte, m *simulator.Method) {
	if !h.sessions.isLive(requestSession(r)) {
		writeFault(w, "The session is not authenticated.", &types.NotAuthenticated{
			NoPermission: types.NoPermission{Object: m.This, PrivilegeId: "VirtualMachine.Provisioning.DiskRandomRead"},
		})
		return
	}
	req := m.Body.(*types.QueryChangedDiskAreas)
	vm := vmByRef(req.This)
	if vm == nil {
		writeFault(w, "The object has already been deleted or has not been completely created", &types.ManagedObjectNotFound{Obj: req.This})
		return
	}
	fileFault := func(msg string) {
		writeFault(w, msg, &types.FileFault{File: fmt.Sprintf("[LocalDS_0] %s/%s-ctk.vmdk", vm.Name, vm.Name)})
	}
	if req.Snapshot != nil {
		snap, ok := simulator.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
		if !ok || snap.Vm != vm.Self {
			writeFault(w, "A specified parameter was not correct: snapshot", &types.InvalidArgument{InvalidProperty: "snapshot"})
			return
		}
	} else if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		writeFault(w, "The operation is not allowed in the current state.", &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: vm.Runtime.PowerState,
		})
		return
	}
	disk := vmDisk(vm, req.DeviceKey)
	if disk == nil {
		writeFault(w, "A specified parameter was not correct: deviceKey", &types.InvalidArgument{InvalidProperty: "deviceKey"})
		return
	}
	if vm.Config.ChangeTrackingEnabled == nil || !*vm.Config.ChangeTrackingEnabled {
		fileFault("Error caused by file: change tracking is not enabled on this virtual machine")
		return
	}
	h.cbt.mu.Lock()
	d := h.cbt.disks[cbtKey(vm.Self.Value, req.DeviceKey)]
	page := h.cbt.pageBytes
	var changes []cbtChange
	var cur, curUUID string
	var capacity int64
	if d != nil {
		changes = append(changes, d.changes...)
		cur, curUUID, capacity = d.changeID(), d.uuid, d.capacity
	}
	h.cbt.mu.Unlock()
	if d == nil {
		fileFault("Error caused by file: the disk has no change tracking state")
		return
	}
	if capacity != disk.CapacityInBytes {
		fileFault("Error caused by file: the disk was resized since change tracking started")
		return
	}
	if req.StartOffset < 0 || req.StartOffset >= disk.CapacityInBytes {
		writeFault(w, "A specified parameter was not correct: startOffset", &types.InvalidArgument{InvalidProperty: "startOffset"})
		return
	}
	since := 0
	all := req.ChangeId == "*"
	if !all {
		uuid, seq, ok := parseChangeID(req.ChangeId)
		_, curSeq, _ := parseChangeID(cur)
		if !ok || uuid != curUUID || seq > curSeq {
			fileFault(fmt.Sprintf("Error caused by file: changeId %q is not valid for this disk", req.ChangeId))
			return
		}
		since = seq
	}
	end := disk.CapacityInBytes
	if page > 0 && req.StartOffset+page < end {
		end = req.StartOffset + page
	}
	var areas []types.DiskChangeExtent
	if all {
		areas = []types.DiskChangeExtent{{Start: req.StartOffset, Length: end - req.StartOffset}}
	} else {
		for _, c := range changes {
			if c.seq <= since {
				continue
			}
			for _, a := range c.areas {
				s, e := a.Start, a.Start+a.Length
				if s < req.StartOffset {
					s = req.StartOffset
				}
				if e > end {
					e = end
				}
				if e > s {
					areas = append(areas, types.DiskChangeExtent{Start: s, Length: e - s})
				}
			}
		}
		areas = mergeExtents(areas)
	}
	writeResult(w, "QueryChangedDiskAreas", &struct {
		Returnval types.DiskChangeInfo `xml:"returnval"`
	}{types.DiskChangeInfo{StartOffset: req.StartOffset, Length: end - req.StartOffset, ChangedArea: areas}})
}

// mergeExtents sorts and merges overlapping or adjacent extents, as vCenter reports them.
func mergeExtents(in []types.DiskChangeExtent) []types.DiskChangeExtent {
	sort.Slice(in, func(i, j int) bool { return in[i].Start < in[j].Start })
	var out []types.DiskChangeExtent
	for _, a := range in {
		if n := len(out); n > 0 && a.Start <= out[n-1].Start+out[n-1].Length {
			if e := a.Start + a.Length; e > out[n-1].Start+out[n-1].Length {
				out[n-1].Length = e - out[n-1].Start
			}
			continue
		}
		out = append(out, a)
	}
	return out
}
