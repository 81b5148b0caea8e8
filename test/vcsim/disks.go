package main

// Disk files in the layout of docs/disk-model.md: a text descriptor plus a
// sparse flat extent of the disk's full capacity. The VDDK simulator and the
// addon's `file` target read and write the same files, so everything here is
// re-read from disk on every operation (never cached): they may have changed
// a CID behind our back, which is exactly what the CID check must see.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

const descriptorMagic = "# Disk DescriptorFile"

// descriptor keeps the lines of a descriptor so that edits preserve whatever
// else (ddb.* metadata written through VixDiskLib_WriteMetadata) is in it.
type descriptor struct {
	path  string
	lines []string
}

func newCID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isDescriptor(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(descriptorMagic))
	n, _ := io.ReadFull(f, head)
	return string(head[:n]) == descriptorMagic
}

func loadDescriptor(path string) (*descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := &descriptor{path: path}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		d.lines = append(d.lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(d.lines) == 0 || d.lines[0] != descriptorMagic {
		return nil, fmt.Errorf("%s is not a disk descriptor", path)
	}
	if d.extent() == "" {
		return nil, fmt.Errorf("%s has no RW <sectors> FLAT extent line", path)
	}
	return d, nil
}

// splitKV parses `key=value` / `key = "value"` lines like the C++ reader in
// native-vddk/src/descriptor.cc does.
func splitKV(line string) (string, string, bool) {
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexByte(line, '=')
	if i < 0 {
		return "", "", false
	}
	k := strings.TrimSpace(line[:i])
	v := strings.TrimSpace(line[i+1:])
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if k == "" || strings.ContainsAny(k, " \t") {
		return "", "", false
	}
	return k, v, true
}

func (d *descriptor) get(key string) string {
	for _, l := range d.lines {
		if k, v, ok := splitKV(l); ok && k == key {
			return v
		}
	}
	return ""
}

// set replaces a top-level key or inserts it before the extent section.
func (d *descriptor) set(key, value string, quoted bool) {
	line := key + "=" + value
	if quoted {
		line = key + "=\"" + value + "\""
	}
	for i, l := range d.lines {
		if k, _, ok := splitKV(l); ok && k == key {
			d.lines[i] = line
			return
		}
	}
	at := 0
	for at < len(d.lines) && !strings.HasPrefix(d.lines[at], "# Extent") {
		at++
	}
	d.lines = append(d.lines[:at], append([]string{line}, d.lines[at:]...)...)
}

var extentRE = regexp.MustCompile(`^RW\s+(\d+)\s+FLAT\s+"([^"]+)"\s+0\s*$`)

// extent is the flat extent's file name, relative to the descriptor's dir.
func (d *descriptor) extent() string {
	for _, l := range d.lines {
		if m := extentRE.FindStringSubmatch(l); m != nil {
			return m[2]
		}
	}
	return ""
}

func (d *descriptor) extentPath() string {
	e := d.extent()
	if filepath.IsAbs(e) {
		return e
	}
	return filepath.Join(filepath.Dir(d.path), e)
}

func (d *descriptor) setExtent(sectors int64, file string) {
	for i, l := range d.lines {
		if extentRE.MatchString(l) {
			d.lines[i] = fmt.Sprintf("RW %d FLAT \"%s\" 0", sectors, file)
			return
		}
	}
}

func (d *descriptor) sectors() int64 {
	for _, l := range d.lines {
		if m := extentRE.FindStringSubmatch(l); m != nil {
			var n int64
			fmt.Sscan(m[1], &n)
			return n
		}
	}
	return 0
}

// save writes the descriptor atomically (temp file + rename), as the other
// writers of the disk model do.
func (d *descriptor) save() error {
	tmp := fmt.Sprintf("%s.tmp-%d", d.path, os.Getpid())
	data := strings.Join(d.lines, "\n") + "\n"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, d.path)
}

// flatName is the extent file name ESXi uses for a descriptor: vm.vmdk ->
// vm-flat.vmdk, vm-000001.vmdk -> vm-000001-flat.vmdk.
func flatName(descriptorFile string) string {
	return strings.TrimSuffix(filepath.Base(descriptorFile), ".vmdk") + "-flat.vmdk"
}

// baseDiskSpec is what a new base descriptor needs.
type baseDiskSpec struct {
	capacity    int64  // bytes
	adapterType string // ddb.adapterType
	uuid        string // ddb.uuid, "60 00 C2 9a ..." form
	hwVersion   string // ddb.virtualHWVersion
}

// createBaseDisk writes a monolithicFlat descriptor at path and a sparse
// flat extent of exactly capacity bytes next to it.
func createBaseDisk(path string, spec baseDiskSpec) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	sectors := spec.capacity / 512
	cyl := sectors / (255 * 63)
	if cyl < 1 {
		cyl = 1
	}
	if cyl > 65535 {
		cyl = 65535
	}
	d := &descriptor{path: path, lines: []string{
		descriptorMagic,
		"version=1",
		`encoding="UTF-8"`,
		"CID=" + newCID(),
		"parentCID=ffffffff",
		`createType="monolithicFlat"`,
		"",
		"# Extent description",
		fmt.Sprintf("RW %d FLAT \"%s\" 0", sectors, flatName(path)),
		"",
		"# The Disk Data Base",
		"#DDB",
		"",
		fmt.Sprintf("ddb.adapterType = \"%s\"", spec.adapterType),
		fmt.Sprintf("ddb.geometry.cylinders = \"%d\"", cyl),
		`ddb.geometry.heads = "255"`,
		`ddb.geometry.sectors = "63"`,
		fmt.Sprintf("ddb.uuid = \"%s\"", spec.uuid),
		fmt.Sprintf("ddb.virtualHWVersion = \"%s\"", spec.hwVersion),
	}}
	if err := truncateNew(d.extentPath(), spec.capacity); err != nil {
		return err
	}
	return d.save()
}

// truncateNew makes path a sparse file of exactly size bytes, discarding any
// previous content (the simulator leaves empty placeholder files).
func truncateNew(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// createDelta makes delta (e.g. vm-000001.vmdk) as a sparse copy of parent,
// with parentCID = parent's current CID and parentFileNameHint = parent.
// Used by CreateSnapshot and RevertToSnapshot (which remakes the delta).
func createDelta(parentPath, deltaPath string) error {
	parent, err := loadDescriptor(parentPath)
	if err != nil {
		return err
	}
	delta := &descriptor{path: deltaPath, lines: append([]string(nil), parent.lines...)}
	delta.set("CID", newCID(), false)
	delta.set("parentCID", parent.get("CID"), false)
	delta.set("parentFileNameHint", filepath.Base(parentPath), true)
	delta.setExtent(parent.sectors(), flatName(deltaPath))
	tmpFlat := delta.extentPath() + ".tmp"
	if err := sparseCopy(parent.extentPath(), tmpFlat); err != nil {
		os.Remove(tmpFlat)
		return err
	}
	if err := os.Rename(tmpFlat, delta.extentPath()); err != nil {
		return err
	}
	return delta.save()
}

// errCIDMismatch is returned by checkLink; its text is what the fault says.
type errCIDMismatch struct{ delta, parent, want, got string }

func (e *errCIDMismatch) Error() string {
	return fmt.Sprintf("CID mismatch: %s has parentCID=%s but its parent %s has CID=%s "+
		"(the parent was written behind the snapshot; revert to the snapshot first)",
		filepath.Base(e.delta), e.want, filepath.Base(e.parent), e.got)
}

// checkLink verifies that delta was made from parent's current content.
func checkLink(parentPath, deltaPath string) error {
	parent, err := loadDescriptor(parentPath)
	if err != nil {
		return err
	}
	delta, err := loadDescriptor(deltaPath)
	if err != nil {
		return err
	}
	if want, got := delta.get("parentCID"), parent.get("CID"); !strings.EqualFold(want, got) {
		return &errCIDMismatch{delta: deltaPath, parent: parentPath, want: want, got: got}
	}
	return nil
}

// consolidate merges delta into parent: the delta's data replaces the
// parent's (its flat is renamed over the parent's), the parent takes the
// delta's CID (so a child of the delta still matches), and the delta's
// files are removed. The caller has checked the link already.
func consolidate(parentPath, deltaPath string) error {
	parent, err := loadDescriptor(parentPath)
	if err != nil {
		return err
	}
	delta, err := loadDescriptor(deltaPath)
	if err != nil {
		return err
	}
	if err := os.Rename(delta.extentPath(), parent.extentPath()); err != nil {
		return err
	}
	parent.set("CID", delta.get("CID"), false)
	// Keep metadata written into the delta (ddb.*), as a real consolidate does.
	for _, l := range delta.lines {
		if k, v, ok := splitKV(l); ok && strings.HasPrefix(k, "ddb.") && parent.get(k) != v {
			setDDB(parent, k, v)
		}
	}
	if err := parent.save(); err != nil {
		return err
	}
	return os.Remove(deltaPath)
}

func setDDB(d *descriptor, key, value string) {
	line := fmt.Sprintf("%s = \"%s\"", key, value)
	for i, l := range d.lines {
		if k, _, ok := splitKV(l); ok && k == key {
			d.lines[i] = line
			return
		}
	}
	d.lines = append(d.lines, line)
}

// reparent points child's parentFileNameHint at newParent (after the
// child's old parent was consolidated into newParent).
func reparent(childPath, newParentPath string) error {
	child, err := loadDescriptor(childPath)
	if err != nil {
		return err
	}
	child.set("parentFileNameHint", filepath.Base(newParentPath), true)
	return child.save()
}

// removeDisk deletes a descriptor and its extent.
func removeDisk(path string) {
	if d, err := loadDescriptor(path); err == nil {
		os.Remove(d.extentPath())
	}
	os.Remove(path)
}

// sparseCopy copies src to dst keeping holes: only the data regions
// (SEEK_DATA/SEEK_HOLE) are copied, so a 1 GiB empty disk costs nothing.
func sparseCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Truncate(size); err != nil {
		return err
	}
	const seekData, seekHole = 3, 4
	buf := make([]byte, 1<<20)
	var off int64
	for off < size {
		start, err := in.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // no data after off
			}
			if errors.Is(err, syscall.EINVAL) {
				return copyNonZero(in, out, off, size, buf)
			}
			return err
		}
		end, err := in.Seek(start, seekHole)
		if err != nil {
			return err
		}
		if _, err := in.Seek(start, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(start, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyBuffer(out, io.LimitReader(in, end-start), buf); err != nil {
			return err
		}
		off = end
	}
	return out.Sync()
}

// copyNonZero is the fallback for file systems without SEEK_DATA: copy
// every chunk that is not all zeros.
func copyNonZero(in, out *os.File, off, size int64, buf []byte) error {
	for off < size {
		n, err := in.ReadAt(buf, off)
		if n > 0 && !allZero(buf[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
