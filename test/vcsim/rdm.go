package main

// RDM disks (MISSION R4). govmomi 0.24's simulator type-asserts every disk
// backing to VirtualDiskFlatVer2BackingInfo in its layout code and panics on
// a VirtualDiskRawDiskMappingVer1BackingInfo. So around the simulator calls
// that reach that code (CreateVM, ReconfigVM, CloneVM, snapshot removal,
// RefreshStorageInfo) RDM backings are swapped for FlatVer2 stand-ins whose
// uuid is a marker, and swapped back afterwards (shieldRDM / unshield).
//
// CreateVM/ReconfigVM also validate an RDM against the LUNs of luns.go:
// deviceName must be a free LUN's canonical name (or its /vmfs/devices/disks
// path) and lunUuid must be the uuid QueryConfigTarget reports; the uuid the
// host reports for the same LUN is refused (InvalidDeviceSpec).

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

const rdmMarker = "vcsim-harness-rdm-"

// rdmShield maps stand-in markers to the RDM backings they replace.
type rdmShield struct {
	mu   sync.Mutex
	n    int
	rdms map[string]*types.VirtualDiskRawDiskMappingVer1BackingInfo
}

func (s *rdmShield) standIn(rdm *types.VirtualDiskRawDiskMappingVer1BackingInfo) *types.VirtualDiskFlatVer2BackingInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rdms == nil {
		s.rdms = map[string]*types.VirtualDiskRawDiskMappingVer1BackingInfo{}
	}
	s.n++
	marker := fmt.Sprintf("%s%d", rdmMarker, s.n)
	s.rdms[marker] = rdm
	mode := rdm.DiskMode
	if mode == "" {
		mode = string(types.VirtualDiskModePersistent)
	}
	return &types.VirtualDiskFlatVer2BackingInfo{
		VirtualDeviceFileBackingInfo: rdm.VirtualDeviceFileBackingInfo,
		DiskMode:                     mode,
		ThinProvisioned:              types.NewBool(false),
		Uuid:                         marker,
	}
}

// shieldVM swaps the RDM backings of vm's disks for stand-ins, in place.
func (h *harness) shieldVM(vm *simulator.VirtualMachine) {
	if vm == nil {
		return
	}
	simulator.Map.WithLock(vm, func() {
		for _, disk := range disksOf(vm) {
			if rdm, ok := disk.Backing.(*types.VirtualDiskRawDiskMappingVer1BackingInfo); ok {
				disk.Backing = h.rdm.standIn(rdm)
			}
		}
	})
}

// unshieldVM puts the RDM backings back (also on VMs that got stand-ins
// copied from a request or a clone source). The RDM keeps the file name and
// datastore the simulator gave the stand-in.
func (h *harness) unshieldVM(vm *simulator.VirtualMachine) {
	if vm == nil {
		return
	}
	simulator.Map.WithLock(vm, func() {
		for _, disk := range disksOf(vm) {
			b := flatBacking(disk)
			if b == nil || !strings.HasPrefix(b.Uuid, rdmMarker) {
				continue
			}
			h.rdm.mu.Lock()
			rdm := h.rdm.rdms[b.Uuid]
			h.rdm.mu.Unlock()
			if rdm == nil {
				continue
			}
			c := *rdm
			c.VirtualDeviceFileBackingInfo = b.VirtualDeviceFileBackingInfo
			disk.Backing = &c
		}
	})
}

// lunFor finds the free LUN an RDM backing names, checking lunUuid.
func (h *harness) lunFor(rdm *types.VirtualDiskRawDiskMappingVer1BackingInfo) (*lun, string) {
	name := strings.TrimPrefix(rdm.DeviceName, "/vmfs/devices/disks/")
	for i := range h.luns {
		l := &h.luns[i]
		if l.canonicalName != name {
			continue
		}
		switch rdm.LunUuid {
		case l.targetUUID:
			return l, ""
		case l.hostUUID:
			return nil, fmt.Sprintf("RDM lunUuid %s of %s is the host's storage device uuid; use the uuid from QueryConfigTarget scsiDisk", rdm.LunUuid, l.canonicalName)
		default:
			return nil, fmt.Sprintf("RDM lunUuid %q does not match LUN %s", rdm.LunUuid, l.canonicalName)
		}
	}
	return nil, fmt.Sprintf("RDM deviceName %q is not a free LUN of this host", rdm.DeviceName)
}

// rewriteSpecRDMs validates the RDM disks a config spec adds or edits and
// replaces their backings by stand-ins. It reports whether it changed the
// spec, or a fault for an invalid RDM.
func (h *harness) rewriteSpecRDMs(spec *types.VirtualMachineConfigSpec) (bool, types.BaseMethodFault, string) {
	changed := false
	for i, dc := range spec.DeviceChange {
		ds := dc.GetVirtualDeviceConfigSpec()
		disk, ok := ds.Device.(*types.VirtualDisk)
		if !ok || ds.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		rdm, ok := disk.Backing.(*types.VirtualDiskRawDiskMappingVer1BackingInfo)
		if !ok {
			continue
		}
		l, msg := h.lunFor(rdm)
		if l == nil {
			return false, &types.InvalidDeviceSpec{DeviceIndex: int32(i)}, msg
		}
		if disk.CapacityInKB == 0 && disk.CapacityInBytes == 0 {
			disk.CapacityInKB = l.capacity / 1024
			disk.CapacityInBytes = l.capacity
		}
		rdm.DeviceName = "/vmfs/devices/disks/" + l.canonicalName
		disk.Backing = h.rdm.standIn(rdm)
		changed = true
	}
	return changed, nil, ""
}

// encodeRequest re-encodes a (modified) request the way govmomi's client
// does, so the simulator decodes it as usual.
func encodeRequest(body interface{}) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(soap.Envelope{Body: body}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// specRequest returns the config spec of a CreateVM/ReconfigVM request and
// a func that re-encodes the request after the spec was changed.
func specRequest(m *simulator.Method) (*types.VirtualMachineConfigSpec, func() ([]byte, error)) {
	switch req := m.Body.(type) {
	case *types.CreateVM_Task:
		return &req.Config, func() ([]byte, error) { return encodeRequest(&methods.CreateVM_TaskBody{Req: req}) }
	case *types.ReconfigVM_Task:
		return &req.Spec, func() ([]byte, error) { return encodeRequest(&methods.ReconfigVM_TaskBody{Req: req}) }
	}
	return nil, nil
}

// hookShielded forwards a call that reaches the simulator's layout code
// (RefreshStorageInfo) with the VM's RDMs shielded.
func (h *harness) hookShielded(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	vm := vmByRef(m.This)
	h.shieldVM(vm)
	rec := h.recorded(r, body)
	h.unshieldVM(vm)
	if vm != nil {
		simulator.Map.WithLock(vm, func() { h.refreshLayout(vm) })
	}
	copyRecorded(w, rec)
}
