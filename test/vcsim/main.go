// Command vcsim-harness runs govmomi's vCenter simulator (Debian's govmomi
// 0.24, which ships the simulator library but no vcsim command) with the
// extra behaviour vmrestore's tests need:
//
//   - every VirtualDisk is a real descriptor + sparse flat extent on disk,
//     laid out as docs/disk-model.md says (disks.go);
//   - snapshots create, revert and consolidate real delta disks, and a
//     consolidation fails with "CID mismatch" when the parent was written
//     behind the snapshot (snapshots.go);
//   - a plain-HTTP control server injects faults, logs calls and expires
//     sessions (control.go, intercept.go);
//   - QueryConfigTarget reports free LUNs for RDM disks (luns.go).
//
// On start it prints ONE JSON line on stdout (url, thumbprints, credentials,
// datastore directories, control url) and serves until SIGTERM/SIGINT.
// See docs/vcsim-harness.md.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

// startupLine is the single JSON line written to stdout once the harness
// accepts connections; tests read it to find the endpoints.
type startupLine struct {
	URL              string            `json:"url"`
	ThumbprintSha1   string            `json:"thumbprintSha1"`
	ThumbprintSha256 string            `json:"thumbprintSha256"`
	Username         string            `json:"username"`
	Password         string            `json:"password"`
	Datastores       map[string]string `json:"datastores"`
	Control          string            `json:"control"`
	Pid              int               `json:"pid"`
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on (0.0.0.0 only inside a container)")
	port := flag.Int("port", 0, "SOAP (https) port; 0 picks a free port")
	controlPort := flag.Int("control-port", 0, "control API (http) port; 0 picks a free port")
	dir := flag.String("dir", "", "root directory for the datastore directories (created if missing; default: a new temp dir)")
	username := flag.String("username", "user", "the only username Login accepts")
	password := flag.String("password", "pass", "the only password Login accepts")
	esxMode := flag.Bool("esx", false, "simulate a standalone ESXi host instead of vCenter")
	vms := flag.Int("vms", -1, "VMs per host/cluster (simulator default 2)")
	hosts := flag.Int("hosts", -1, "standalone hosts per datacenter (vCenter mode; simulator default 1)")
	clusters := flag.Int("clusters", -1, "clusters per datacenter (vCenter mode; simulator default 1)")
	datastores := flag.Int("datastores", 1, "local datastores (LocalDS_0, LocalDS_1, ...)")
	luns := flag.Int("luns", 2, "free LUNs reported by QueryConfigTarget (for RDM disks)")
	diskMB := flag.Int64("disk-mb", 32, "capacity in MiB of the disk of each VM the model creates")
	keep := flag.Bool("keep", false, "keep the datastore directories on exit")
	trace := flag.Bool("trace", false, "log SOAP traffic to stderr")
	flag.Parse()

	log.SetPrefix("vcsim-harness: ")
	log.SetOutput(os.Stderr)

	root := *dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "vcsim-harness-"); err != nil {
			log.Fatal(err)
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		log.Fatal(err)
	}

	var model *simulator.Model
	if *esxMode {
		model = simulator.ESX()
	} else {
		model = simulator.VPX()
		if *hosts >= 0 {
			model.Host = *hosts
		}
		if *clusters >= 0 {
			model.Cluster = *clusters
		}
	}
	if *vms >= 0 {
		model.Machine = *vms
	}
	model.Datastore = *datastores

	// Model.Create makes each local datastore with ioutil.TempDir(""), which
	// honours TMPDIR: pointing it at -dir puts every datastore under it.
	oldTmp, hadTmp := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", root)
	err = model.Create()
	if hadTmp {
		os.Setenv("TMPDIR", oldTmp)
	} else {
		os.Unsetenv("TMPDIR")
	}
	if err != nil {
		log.Fatalf("creating the model: %v", err)
	}
	simulator.Trace = *trace

	h := newHarness(model, *diskMB*1024*1024)
	if err := h.normalizeModelDisks(); err != nil {
		log.Fatalf("laying out model disks: %v", err)
	}
	h.addLuns(*luns)

	cert, err := selfSignedCert()
	if err != nil {
		log.Fatalf("certificate: %v", err)
	}
	model.Service.Listen = &url.URL{
		Host: net.JoinHostPort(*host, strconv.Itoa(*port)),
		User: url.UserPassword(*username, *password), // Login accepts exactly these
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv := model.Service.NewServer()
	// The simulator's server is already listening, but nobody knows its port
	// until we print it, so putting our interceptor in front now is safe.
	srv.Config.Handler = h.wrap(srv.Config.Handler)

	ctl, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*controlPort)))
	if err != nil {
		log.Fatalf("control listener: %v", err)
	}
	ctlServer := &http.Server{Handler: h.controlHandler()}
	go func() { _ = ctlServer.Serve(ctl) }()

	der := cert.Certificate[0]
	line := startupLine{
		URL:              fmt.Sprintf("https://%s/sdk", srv.Listener.Addr().String()),
		ThumbprintSha1:   thumbprint(sha1Sum(der)),
		ThumbprintSha256: thumbprint(sha256Sum(der)),
		Username:         *username,
		Password:         *password,
		Datastores:       h.datastoreDirs(),
		Control:          "http://" + ctl.Addr().String(),
		Pid:              os.Getpid(),
	}
	out, _ := json.Marshal(line)
	os.Stdout.Write(append(out, '\n'))
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("got %v, shutting down", s)

	// Close waits for in-flight requests; a long-poll WaitForUpdatesEx could
	// hold it forever, so give it a bounded time.
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = ctlServer.Shutdown(ctx)
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		log.Printf("server close timed out")
	}
	if !*keep {
		model.Remove() // removes the datastore directories
	}
	os.Exit(0)
}

// selfSignedCert makes a fresh RSA certificate for 127.0.0.1/localhost, so
// clients can test thumbprint pinning against a cert that is not shared.
func selfSignedCert() (tls.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"vmrestore vcsim harness"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * 365 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func sha1Sum(b []byte) []byte   { s := sha1.Sum(b); return s[:] }
func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// thumbprint formats a digest the way vSphere shows thumbprints: AA:BB:...
func thumbprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}
