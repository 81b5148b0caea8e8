package main

// The link between the simulator's inventory (VirtualDisk devices and their
// backings) and the disk files of disks.go.

import (
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type harness struct {
	model        *simulator.Model
	inner        http.Handler // the simulator's own handler
	modelDiskCap int64

	// diskMu serialises the SOAP calls that change disk files (snapshot
	// operations, CreateVM, ReconfigVM), so a check and the change it
	// guards cannot interleave with another such call.
	diskMu sync.Mutex

	calls    callLog
	faults   faultTable
	sessions sessionTracker
	luns     []lun
	rdm      rdmShield

	// snapState remembers, per snapshot and disk key, the file that held
	// the disk when the snapshot was taken (the snapshot's state). The delta
	// made at that moment is the chain element whose parent is that file.
	cbt cbtState

	snapMu    sync.Mutex
	snapState map[string]map[int32]string
	vmsn      map[string]string // snapshot -> its .vmsn datastore path
}

func newHarness(model *simulator.Model, modelDiskCap int64) *harness {
	return &harness{
		model:        model,
		modelDiskCap: modelDiskCap,
		snapState:    map[string]map[int32]string{},
		cbt:          cbtState{disks: map[string]*cbtDisk{}},
		vmsn:         map[string]string{},
	}
}

// datastoreDirs maps datastore names to their local directories.
func (h *harness) datastoreDirs() map[string]string {
	out := map[string]string{}
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		out[ds.Name] = ds.Info.GetDatastoreInfo().Url
	}
	return out
}

// localPath resolves "[ds] dir/file.vmdk" to a path on this machine.
func (h *harness) localPath(dsPath string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return "", fmt.Errorf("invalid datastore path %q", dsPath)
	}
	dir, ok := h.datastoreDirs()[p.Datastore]
	if !ok {
		return "", fmt.Errorf("unknown datastore %q in %q", p.Datastore, dsPath)
	}
	return filepath.Join(dir, filepath.FromSlash(p.Path)), nil
}

func vmByRef(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}

func disksOf(vm *simulator.VirtualMachine) []*types.VirtualDisk {
	var out []*types.VirtualDisk
	for _, d := range vm.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			out = append(out, disk)
		}
	}
	return out
}

func flatBacking(disk *types.VirtualDisk) *types.VirtualDiskFlatVer2BackingInfo {
	b, _ := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	return b
}

func diskCapacity(disk *types.VirtualDisk) int64 {
	if disk.CapacityInBytes > 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}

// adapterType is the ddb.adapterType ESXi writes for the disk's controller.
func adapterType(vm *simulator.VirtualMachine, disk *types.VirtualDisk) string {
	for _, d := range vm.Config.Hardware.Device {
		if d.GetVirtualDevice().Key != disk.ControllerKey {
			continue
		}
		switch d.(type) {
		case *types.VirtualIDEController:
			return "ide"
		case *types.VirtualBusLogicController:
			return "buslogic"
		}
	}
	return "lsilogic" // LSI Logic, LSI SAS and PVSCSI disks all say lsilogic
}

// newDiskUUID returns the backing uuid ("6000C29x-...") and the same bytes
// in ddb.uuid form ("60 00 C2 9x ...-...").
func newDiskUUID() (string, string) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0], b[1], b[2], b[3] = 0x60, 0x00, 0xC2, 0x90|(b[3]&0x0f)
	h := fmt.Sprintf("%X", b)
	backing := fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
	var parts []string
	for _, c := range b {
		parts = append(parts, fmt.Sprintf("%02x", c))
	}
	ddb := strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
	return backing, ddb
}

func ddbUUIDFromBacking(u string) string {
	hexs := strings.ReplaceAll(u, "-", "")
	if len(hexs) != 32 {
		_, d := newDiskUUID()
		return d
	}
	var parts []string
	for i := 0; i < 32; i += 2 {
		parts = append(parts, strings.ToLower(hexs[i:i+2]))
	}
	return strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
}

// ensureDisks gives every file-backed VirtualDisk of vm a real descriptor
// and flat extent (the simulator itself only touches empty files). Disks
// that already have a descriptor are left alone. Must run with vm locked.
func (h *harness) ensureDisks(vm *simulator.VirtualMachine) error {
	hw := strings.TrimPrefix(vm.Config.Version, "vmx-")
	if hw == "" {
		hw = "14"
	}
	for _, disk := range disksOf(vm) {
		fb, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		name := fb.GetVirtualDeviceFileBackingInfo().FileName
		p, err := h.localPath(name)
		if err != nil {
			return err
		}
		if isDescriptor(p) {
			continue
		}
		flat := flatBacking(disk)
		if flat != nil && flat.Uuid == "" {
			flat.Uuid, _ = newDiskUUID()
		}
		uuid := ""
		if flat != nil {
			uuid = ddbUUIDFromBacking(flat.Uuid)
		} else {
			_, uuid = newDiskUUID()
		}
		capacity := diskCapacity(disk)
		if err := createBaseDisk(p, baseDiskSpec{
			capacity:    capacity,
			adapterType: adapterType(vm, disk),
			uuid:        uuid,
			hwVersion:   hw,
		}); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
		log.Printf("%s: created disk %s (%d bytes)", vm.Name, name, capacity)
	}
	return nil
}

// refreshLayout rebuilds layout.disk and layoutEx.disk (each disk's chain,
// top first, by walking backing.parent) and the .vmdk entries of
// layoutEx.file. It does NOT use the simulator's RefreshStorageInfo: that
// renumbers every layoutEx.file key, after which the simulator's own
// snapshot removal deletes files by stale keys (it could delete a disk).
// Here keys of existing entries never change. Must run with vm locked.
func (h *harness) refreshLayout(vm *simulator.VirtualMachine) {
	if vm.LayoutEx == nil {
		vm.LayoutEx = &types.VirtualMachineFileLayoutEx{}
	}
	if vm.Layout == nil {
		vm.Layout = &types.VirtualMachineFileLayout{}
	}
	lx := vm.LayoutEx
	kept := lx.File[:0]
	for _, f := range lx.File {
		if p, err := h.localPath(f.Name); err == nil && !exists(p) {
			continue // a consolidated delta, a removed disk or .vmsn
		}
		kept = append(kept, f)
	}
	lx.File = kept
	keyOf := func(dsPath, kind string) int32 {
		var next int32
		for _, f := range lx.File {
			if f.Name == dsPath {
				return f.Key
			}
			if f.Key >= next {
				next = f.Key + 1
			}
		}
		var size int64
		if p, err := h.localPath(dsPath); err == nil {
			if st, err := os.Stat(p); err == nil {
				size = st.Size()
			}
		}
		lx.File = append(lx.File, types.VirtualMachineFileLayoutExFileInfo{
			Key: next, Name: dsPath, Type: kind, Size: size, UniqueSize: size, Accessible: types.NewBool(true),
		})
		return next
	}
	// The VM's own files (the simulator's RefreshStorageInfo lists them
	// without their folder, so those entries were dropped above).
	var vmx object.DatastorePath
	if vmx.FromString(vm.Config.Files.VmPathName) {
		dirPath := vmx.Path
		if path.Ext(dirPath) == ".vmx" {
			dirPath = path.Dir(dirPath)
		}
		if local, err := h.localPath((&object.DatastorePath{Datastore: vmx.Datastore, Path: dirPath}).String()); err == nil {
			entries, _ := os.ReadDir(local)
			for _, e := range entries {
				if e.IsDir() || strings.Contains(e.Name(), ".tmp") {
					continue
				}
				keyOf((&object.DatastorePath{Datastore: vmx.Datastore, Path: path.Join(dirPath, e.Name())}).String(), fileType(e.Name()))
			}
		}
	}
	var disks []types.VirtualMachineFileLayoutDiskLayout
	var disksEx []types.VirtualMachineFileLayoutExDiskLayout
	for _, disk := range disksOf(vm) {
		fb, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		files := []string{fb.GetVirtualDeviceFileBackingInfo().FileName}
		if b := flatBacking(disk); b != nil {
			files = nil
			for _, l := range chainOf(b) {
				files = append(files, l.file)
			}
		}
		d := types.VirtualMachineFileLayoutDiskLayout{Key: disk.Key}
		dx := types.VirtualMachineFileLayoutExDiskLayout{Key: disk.Key}
		for _, f := range files {
			var p object.DatastorePath
			p.FromString(f)
			extent := object.DatastorePath{Datastore: p.Datastore, Path: path.Join(path.Dir(p.Path), flatName(p.Path))}
			d.DiskFile = append(d.DiskFile, f)
			dx.Chain = append(dx.Chain, types.VirtualMachineFileLayoutExDiskUnit{FileKey: []int32{
				keyOf(f, string(types.VirtualMachineFileLayoutExFileTypeDiskDescriptor)),
				keyOf(extent.String(), string(types.VirtualMachineFileLayoutExFileTypeDiskExtent)),
			}})
		}
		disks = append(disks, d)
		disksEx = append(disksEx, dx)
	}
	vm.Layout.Disk = disks
	lx.Disk = disksEx
	lx.Timestamp = time.Now()
}

// fileType is the layoutEx.file type of a VM file, by name.
func fileType(name string) string {
	switch {
	case strings.HasSuffix(name, "-flat.vmdk"):
		return string(types.VirtualMachineFileLayoutExFileTypeDiskExtent)
	case strings.HasSuffix(name, ".vmdk"):
		return string(types.VirtualMachineFileLayoutExFileTypeDiskDescriptor)
	case strings.HasSuffix(name, ".vmx"):
		return string(types.VirtualMachineFileLayoutExFileTypeConfig)
	case strings.HasSuffix(name, ".nvram"):
		return string(types.VirtualMachineFileLayoutExFileTypeNvram)
	case strings.HasSuffix(name, ".log"):
		return string(types.VirtualMachineFileLayoutExFileTypeLog)
	case strings.HasSuffix(name, ".vmsn"):
		return string(types.VirtualMachineFileLayoutExFileTypeSnapshotData)
	case strings.HasSuffix(name, ".vmsd"):
		return string(types.VirtualMachineFileLayoutExFileTypeSnapshotList)
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// normalizeModelDisks renames the disks the simulator's model made
// ("[LocalDS_0] DC0_H0_VM0/disk1.vmdk") to vCenter's naming
// ("[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk", then _1, _2 ...), sets the
// capacity to -disk-mb and creates the real files.
func (h *harness) normalizeModelDisks() error {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		var err error
		simulator.Map.WithLock(vm, func() {
			for i, disk := range disksOf(vm) {
				b := flatBacking(disk)
				if b == nil {
					continue
				}
				var p object.DatastorePath
				p.FromString(b.FileName)
				name := vm.Name + ".vmdk"
				if i > 0 {
					name = fmt.Sprintf("%s_%d.vmdk", vm.Name, i)
				}
				newPath := object.DatastorePath{Datastore: p.Datastore, Path: path.Join(path.Dir(p.Path), name)}
				if old, lerr := h.localPath(b.FileName); lerr == nil && newPath.String() != b.FileName {
					os.Remove(old)
					os.Remove(strings.TrimSuffix(old, ".vmdk") + "-flat.vmdk")
				}
				b.FileName = newPath.String()
				if h.modelDiskCap > 0 {
					disk.CapacityInBytes = h.modelDiskCap
					disk.CapacityInKB = h.modelDiskCap / 1024
				}
			}
			if err = h.ensureDisks(vm); err == nil {
				h.refreshLayout(vm)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// chainLink is one file of a disk's backing chain, top (current) first.
type chainLink struct {
	backing *types.VirtualDiskFlatVer2BackingInfo // the element as found (not modified)
	file    string                                // datastore path
}

func chainOf(b *types.VirtualDiskFlatVer2BackingInfo) []chainLink {
	var out []chainLink
	for ; b != nil; b = b.Parent {
		out = append(out, chainLink{backing: b, file: b.FileName})
	}
	return out
}

// buildChain rebuilds a backing from chain links (top first) with fresh
// copies, so backings captured by snapshot configs are never mutated.
func buildChain(links []chainLink) *types.VirtualDiskFlatVer2BackingInfo {
	var parent *types.VirtualDiskFlatVer2BackingInfo
	for i := len(links) - 1; i >= 0; i-- {
		c := *links[i].backing
		c.FileName = links[i].file
		c.Parent = parent
		parent = &c
	}
	return parent
}

// replaceBackings installs new backings (by device key) as a new device
// list, through Map.Update so property collectors see the change.
func replaceBackings(vm *simulator.VirtualMachine, backings map[int32]*types.VirtualDiskFlatVer2BackingInfo) {
	if len(backings) == 0 {
		return
	}
	devices := make([]types.BaseVirtualDevice, 0, len(vm.Config.Hardware.Device))
	for _, d := range vm.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			if nb, ok := backings[disk.Key]; ok {
				c := *disk
				c.Backing = nb
				devices = append(devices, &c)
				continue
			}
		}
		devices = append(devices, d)
	}
	simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
}

var deltaSuffixRE = regexp.MustCompile(`-\d{6}$`)

// nextDeltaName picks "<base>-00000N.vmdk" with the smallest free N, the
// way ESXi numbers snapshot deltas.
func (h *harness) nextDeltaName(top string) (string, error) {
	var p object.DatastorePath
	p.FromString(top)
	stem := deltaSuffixRE.ReplaceAllString(strings.TrimSuffix(p.Path, ".vmdk"), "")
	for n := 1; n < 1000000; n++ {
		cand := object.DatastorePath{Datastore: p.Datastore, Path: fmt.Sprintf("%s-%06d.vmdk", stem, n)}
		local, err := h.localPath(cand.String())
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(local); os.IsNotExist(err) {
			return cand.String(), nil
		}
	}
	return "", fmt.Errorf("no free delta name for %s", top)
}

// entityName is for log lines.
func entityName(ref types.ManagedObjectReference) string {
	if e, ok := simulator.Map.Get(ref).(mo.Entity); ok {
		return e.Entity().Name
	}
	return ref.Value
}
