package main

// An http.Handler in front of the simulator's /sdk endpoint. Overriding the
// simulator's methods by putting wrapper types into simulator.Map breaks the
// simulator's own `Map.Get(ref).(*VirtualMachine)` assertions, so instead
// every SOAP request is decoded here first (simulator.UnmarshalBody) to:
// log the call, apply injected faults, and run before/after hooks around the
// simulator's own implementation (disk files for snapshots, CreateVM, ...).

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

var vimTypes = types.TypeFunc()

// typeFunc resolves vim25 type names, also when a client sent them with a
// namespace prefix ("vim25:TraversalSpec"), like the simulator does.
func typeFunc(name string) (reflect.Type, bool) {
	if t, ok := vimTypes(name); ok {
		return t, true
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return vimTypes(name[i+1:])
	}
	return nil, false
}

// hook runs a SOAP method instead of passing it straight to the simulator.
// It gets the raw request so it can still forward it (h.forward).
type hook func(h *harness, w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method)

var hooks = map[string]hook{
	"CreateVM_Task":                (*harness).hookCreateOrReconfigure,
	"ReconfigVM_Task":              (*harness).hookCreateOrReconfigure,
	"CloneVM_Task":                 (*harness).hookCreateOrReconfigure,
	"CreateSnapshot_Task":          (*harness).hookCreateSnapshot,
	"RevertToSnapshot_Task":        (*harness).hookRevertSnapshot,
	"RevertToCurrentSnapshot_Task": (*harness).hookRevertSnapshot,
	"RemoveSnapshot_Task":          (*harness).hookRemoveOrHalfRemove,
	"RemoveAllSnapshots_Task":      (*harness).hookRemoveSnapshot,
	"ConsolidateVMDisks_Task":      (*harness).hookConsolidate,
	"QueryConfigTarget":            (*harness).hookQueryConfigTarget,
	"RefreshStorageInfo":           (*harness).hookShielded,
	"QueryChangedDiskAreas":        (*harness).hookQueryChangedDiskAreas,
}

func (h *harness) wrap(inner http.Handler) http.Handler {
	h.inner = inner
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || (r.URL.Path != "/sdk" && r.URL.Path != "/sdk/vimService") {
			inner.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		defer h.sessions.noteResponse(w.Header())

		m, err := simulator.UnmarshalBody(typeFunc, body)
		if err != nil {
			// Let the simulator produce its own fault for bad requests.
			h.forward(inner, w, r, body)
			return
		}
		entry := h.calls.add(m.Name, m.This)

		if rule := h.faults.take(m.Name, m.This.Value); rule != nil {
			entry.setInjected(rule)
			if rule.delay > 0 {
				sleep(rule.delay)
			}
			if rule.fault != nil {
				h.injectFault(w, m, rule)
				return
			}
		}

		if needsSession[m.Name] && !h.sessions.isLive(requestSession(r)) {
			writeFault(w, "The session is not authenticated.", &types.NotAuthenticated{
				NoPermission: types.NoPermission{Object: m.This, PrivilegeId: "System.View"},
			})
			return
		}
		if m.Name == "Logout" {
			h.sessions.forget(requestSession(r))
		}

		if hk := hooks[m.Name]; hk != nil {
			h.diskMu.Lock()
			defer h.diskMu.Unlock()
			hk(h, w, r, body, m)
			return
		}
		h.forward(inner, w, r, body)
	})
}

// forward replays the request body into the simulator.
func (h *harness) forward(inner http.Handler, w http.ResponseWriter, r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	inner.ServeHTTP(w, r)
}

// recorded runs the simulator into a recorder, so a hook can act on the
// result before the client sees it.
func (h *harness) recorded(r *http.Request, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	h.inner.ServeHTTP(rec, r)
	return rec
}

// copyRecorded sends a recorded response to the client unchanged.
func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

var taskRefRE = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

// recordedTask returns the simulator Task a recorded *_Task response names.
func recordedTask(rec *httptest.ResponseRecorder) *simulator.Task {
	if rec.Code != http.StatusOK {
		return nil
	}
	m := taskRefRE.FindSubmatch(rec.Body.Bytes())
	if m == nil {
		return nil
	}
	t, _ := simulator.Map.Get(types.ManagedObjectReference{Type: "Task", Value: string(m[1])}).(*simulator.Task)
	return t
}

// --- SOAP encoding, the same shape the simulator writes -------------------

type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type faultDetail struct{ Fault types.AnyType }

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

// MarshalXML names the detail element "<Type>Fault" with xsi:type, as vCenter does.
func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:vim25"},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

// namedResponse encodes Val as <Name xmlns="urn:vim25"> inside the Body.
type namedResponse struct {
	Name string
	Val  interface{}
}

func (r *namedResponse) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(r.Val, xml.StartElement{Name: xml.Name{Space: "urn:vim25", Local: r.Name}}); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

func writeEnvelope(w http.ResponseWriter, status int, body interface{}) {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	enc := xml.NewEncoder(&out)
	err := enc.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		log.Printf("encoding response: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out.Bytes())
}

// writeFault answers the call itself with a SOAP fault (HTTP 500).
func writeFault(w http.ResponseWriter, msg string, fault types.BaseMethodFault) {
	f := &soapFault{Code: "ServerFaultCode", String: msg}
	f.Detail.Fault = &faultDetail{Fault: fault}
	writeEnvelope(w, http.StatusInternalServerError, struct{ Fault *soapFault }{f})
}

// writeResult answers with <Method>Response containing val.
func writeResult(w http.ResponseWriter, method string, val interface{}) {
	writeEnvelope(w, http.StatusOK, &namedResponse{Name: method + "Response", Val: val})
}

type taskReturn struct {
	Returnval types.ManagedObjectReference `xml:"returnval"`
}

// failedTask creates a Task on `this` that ends in error with fault, the way
// vCenter reports most runtime faults of *_Task methods, and answers the
// call with it.
func failedTask(w http.ResponseWriter, method string, this types.ManagedObjectReference, fault types.BaseMethodFault, msg string) {
	if msg == "" {
		msg = reflect.TypeOf(fault).Elem().Name()
	}
	mf := fault.GetMethodFault()
	mf.FaultMessage = append(mf.FaultMessage, types.LocalizableMessage{Key: "vcsim.harness.fault", Message: msg})
	name := strings.TrimSuffix(method, "_Task") + "Task"
	task := simulator.CreateTask(this, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	})
	ref := task.Run()
	// Task.Run sets localizedMessage to the Go type name; use the real text.
	simulator.Map.Update(task, []types.PropertyChange{{
		Name: "info.error",
		Val:  &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg},
	}})
	writeResult(w, method, &taskReturn{Returnval: ref})
}

// newFault makes an empty vim25 fault from its type name ("InvalidPowerState").
func newFault(name string) (types.BaseMethodFault, error) {
	t, ok := typeFunc(name)
	if !ok {
		return nil, fmt.Errorf("unknown vim25 type %q", name)
	}
	f, ok := reflect.New(t).Interface().(types.BaseMethodFault)
	if !ok {
		return nil, fmt.Errorf("%q is not a MethodFault", name)
	}
	return f, nil
}

// injectFault applies a fault rule: NotAuthenticated and non-task methods
// fault the call itself; *_Task methods get a task that fails with it.
func (h *harness) injectFault(w http.ResponseWriter, m *simulator.Method, rule *faultRule) {
	fault, _ := newFault(rule.faultName)              // validated when the rule was added
	if np, ok := fault.(types.BaseNoPermission); ok { // NoPermission, NotAuthenticated
		np.GetNoPermission().Object = m.This
		np.GetNoPermission().PrivilegeId = "System.View"
	}
	if ips, ok := fault.(*types.InvalidPowerState); ok {
		if vm := vmByRef(m.This); vm != nil {
			ips.ExistingState = vm.Runtime.PowerState
		}
	}
	log.Printf("injecting %s into %s on %s", rule.faultName, m.Name, m.This.Value)
	if strings.HasSuffix(m.Name, "_Task") && rule.faultName != "NotAuthenticated" {
		failedTask(w, m.Name, m.This, fault, rule.message)
		return
	}
	msg := rule.message
	if msg == "" {
		msg = rule.faultName
	}
	writeFault(w, msg, fault)
}
