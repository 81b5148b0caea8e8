package main

// Free LUNs for RDM disks (MISSION R4). QueryConfigTarget on an environment
// browser lists them as scsiDisk entries; the hosts' storage device info
// lists the same LUNs (same canonical name) with a DIFFERENT uuid, as the
// point of R4 is that only the config-target uuid is usable as lunUuid.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

type lun struct {
	canonicalName string // naa.6000c29...
	targetUUID    string // what QueryConfigTarget reports (the usable one)
	hostUUID      string // what HostSystem.config.storageDevice reports
	capacity      int64  // bytes
}

const lunCapacity = 1 << 30

// addLuns makes n LUNs with stable names (same across runs) and adds them
// to every host's storage device list.
func (h *harness) addLuns(n int) {
	for i := 0; i < n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("vcsim-harness-lun-%d", i)))
		naa := fmt.Sprintf("6000c29%x", sum[:13])[:32]
		h.luns = append(h.luns, lun{
			canonicalName: "naa." + naa,
			targetUUID:    fmt.Sprintf("0200%02x0000%s566972747561", i, naa),
			hostUUID:      fmt.Sprintf("0100%02x0000%s486f73744c55", i, naa),
			capacity:      lunCapacity,
		})
	}
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		simulator.Map.WithLock(host, func() {
			if host.Config == nil || host.Config.StorageDevice == nil {
				return
			}
			for _, l := range h.luns {
				host.Config.StorageDevice.ScsiLun = append(host.Config.StorageDevice.ScsiLun, l.scsiDisk(l.hostUUID))
			}
		})
	}
}

func (l lun) scsiDisk(uuid string) *types.HostScsiDisk {
	path := "/vmfs/devices/disks/" + l.canonicalName
	return &types.HostScsiDisk{
		ScsiLun: types.ScsiLun{
			HostDevice:       types.HostDevice{DeviceName: path, DeviceType: "disk"},
			Key:              "key-vim.host.ScsiDisk-" + uuid,
			Uuid:             uuid,
			CanonicalName:    l.canonicalName,
			DisplayName:      "Local VMware Disk (" + l.canonicalName + ")",
			LunType:          "disk",
			Vendor:           "VMware  ",
			Model:            "Virtual disk    ",
			OperationalState: []string{"ok"},
		},
		Capacity:   types.HostDiskDimensionsLba{BlockSize: 512, Block: l.capacity / 512},
		DevicePath: path,
		Ssd:        types.NewBool(false),
		LocalDisk:  types.NewBool(false),
	}
}

// hookQueryConfigTarget lets the simulator answer (so authentication and
// its datastores/networks stay as they are), then adds the scsiDisk list.
func (h *harness) hookQueryConfigTarget(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method) {
	rec := h.recorded(r, body)
	if rec.Code != http.StatusOK {
		copyRecorded(w, rec)
		return
	}
	req := m.Body.(*types.QueryConfigTarget)
	res := &methods.QueryConfigTargetBody{}
	if err := h.model.Service.RoundTrip(context.Background(), &methods.QueryConfigTargetBody{Req: req}, res); err != nil || res.Res == nil || res.Res.Returnval == nil {
		copyRecorded(w, rec)
		return
	}
	for i, l := range h.luns {
		res.Res.Returnval.ScsiDisk = append(res.Res.Returnval.ScsiDisk, types.VirtualMachineScsiDiskDeviceInfo{
			VirtualMachineDiskDeviceInfo: types.VirtualMachineDiskDeviceInfo{
				VirtualMachineTargetInfo: types.VirtualMachineTargetInfo{Name: "/vmfs/devices/disks/" + l.canonicalName},
				Capacity:                 l.capacity / 1024, // KB
			},
			Disk:      l.scsiDisk(l.targetUUID),
			LunNumber: int32(i),
		})
	}
	writeResult(w, "QueryConfigTarget", res.Res)
}
