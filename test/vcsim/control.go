package main

// The control server: plain HTTP on loopback, on its own port, so tests can
// steer the simulator without going through SOAP.
//
//   POST   /faults            add a fault rule (JSON, see faultRuleJSON)
//   GET    /faults            list the rules still armed
//   DELETE /faults            remove all rules
//   GET    /calls             SOAP calls received so far (?method=X filters)
//   DELETE /calls             clear the call log
//   POST   /sessions/expire   terminate every session (clients must log in again)
//   GET    /health            {"ok":true}

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func sleep(d time.Duration) { time.Sleep(d) }

// --- call log -------------------------------------------------------------

type callEntry struct {
	Seq           int64     `json:"seq"`
	Method        string    `json:"method"`
	Moref         string    `json:"moref"`
	Type          string    `json:"type"`
	Time          time.Time `json:"time"`
	InjectedFault string    `json:"injectedFault,omitempty"`
	DelayMs       int64     `json:"delayMs,omitempty"`
}

type callLog struct {
	mu      sync.Mutex
	seq     int64
	entries []*callEntry
}

const maxCalls = 20000

func (l *callLog) add(method string, this types.ManagedObjectReference) *callEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e := &callEntry{Seq: l.seq, Method: method, Moref: this.Value, Type: this.Type, Time: time.Now().UTC()}
	l.entries = append(l.entries, e)
	if len(l.entries) > maxCalls {
		l.entries = l.entries[len(l.entries)-maxCalls:]
	}
	return e
}

func (e *callEntry) setInjected(r *faultRule) {
	e.InjectedFault = r.faultName
	e.DelayMs = r.delay.Milliseconds()
}

func (l *callLog) list(method string) []callEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []callEntry{}
	for _, e := range l.entries {
		if method == "" || e.Method == method {
			out = append(out, *e)
		}
	}
	return out
}

func (l *callLog) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}

// --- fault rules ----------------------------------------------------------

// faultRuleJSON is the body of POST /faults.
type faultRuleJSON struct {
	Method  string `json:"method"`
	Moref   string `json:"moref,omitempty"`
	Count   *int   `json:"count,omitempty"` // default 1; -1 = every call until DELETE /faults
	Fault   string `json:"fault,omitempty"` // vim25 fault type name; empty = delay only
	Message string `json:"message,omitempty"`
	DelayMs int64  `json:"delayMs,omitempty"`
}

type faultRule struct {
	id        int
	method    string
	moref     string
	remaining int
	faultName string
	fault     types.BaseMethodFault // nil for delay-only rules
	message   string
	delay     time.Duration
}

type faultTable struct {
	mu     sync.Mutex
	nextID int
	rules  []*faultRule
}

func (t *faultTable) add(j faultRuleJSON) (*faultRule, error) {
	if j.Method == "" {
		return nil, fmt.Errorf("method is required")
	}
	if j.Fault == "" && j.DelayMs <= 0 {
		return nil, fmt.Errorf("give a fault, a delayMs, or both")
	}
	r := &faultRule{method: j.Method, moref: j.Moref, remaining: 1, faultName: j.Fault,
		message: j.Message, delay: time.Duration(j.DelayMs) * time.Millisecond}
	if j.Count != nil {
		if *j.Count == 0 || *j.Count < -1 {
			return nil, fmt.Errorf("count must be >= 1, or -1 for unlimited")
		}
		r.remaining = *j.Count
	}
	if j.Fault != "" {
		f, err := newFault(j.Fault)
		if err != nil {
			return nil, err
		}
		r.fault = f
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nextID++
	r.id = t.nextID
	t.rules = append(t.rules, r)
	return r, nil
}

// take returns the first armed rule for the call and uses up one count.
func (t *faultTable) take(method, moref string) *faultRule {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.rules {
		if r.method != method || (r.moref != "" && r.moref != moref) {
			continue
		}
		if r.remaining > 0 {
			r.remaining--
			if r.remaining == 0 {
				t.rules = append(t.rules[:i], t.rules[i+1:]...)
			}
		}
		c := *r
		return &c
	}
	return nil
}

func (t *faultTable) list() []map[string]interface{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []map[string]interface{}{}
	for _, r := range t.rules {
		out = append(out, map[string]interface{}{"id": r.id, "method": r.method, "moref": r.moref,
			"remaining": r.remaining, "fault": r.faultName, "message": r.message, "delayMs": r.delay.Milliseconds()})
	}
	return out
}

func (t *faultTable) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = nil
}

// --- sessions -------------------------------------------------------------

// sessionTracker learns the live session keys from the session cookie
// that Login (and LoginByToken, CloneSession, ...) responses set, so that
// /sessions/expire can terminate them in the simulator, and so that calls
// the simulator lets through without a session (RetrieveProperties[Ex],
// Fetch, List) can be refused with NotAuthenticated, as vCenter does.
type sessionTracker struct {
	mu   sync.Mutex
	live map[string]bool
}

func (s *sessionTracker) noteResponse(hdr http.Header) {
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == soap.SessionCookieName && c.Value != "" {
			s.mu.Lock()
			if s.live == nil {
				s.live = map[string]bool{}
			}
			s.live[c.Value] = true
			s.mu.Unlock()
		}
	}
}

func requestSession(r *http.Request) string {
	if c, err := r.Cookie(soap.SessionCookieName); err == nil {
		return c.Value
	}
	return ""
}

func (s *sessionTracker) isLive(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return key != "" && s.live[key]
}

func (s *sessionTracker) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, key)
}

// needsSession lists the methods the simulator serves without a session
// although vCenter requires one.
var needsSession = map[string]bool{
	"RetrieveProperties": true, "RetrievePropertiesEx": true, "Fetch": true, "List": true,
}

// expireAll terminates every live session through the simulator's own
// SessionManager.TerminateSession; the next call with an old cookie gets
// NotAuthenticated, exactly like after a vCenter session timeout.
func (h *harness) expireAll() int {
	h.sessions.mu.Lock()
	keys := h.sessions.live
	h.sessions.live = nil
	h.sessions.mu.Unlock()
	n := 0
	for key := range keys {
		req := &methods.TerminateSessionBody{Req: &types.TerminateSession{
			This:      *h.model.ServiceContent.SessionManager,
			SessionId: []string{key},
		}}
		res := &methods.TerminateSessionBody{}
		if err := h.model.Service.RoundTrip(context.Background(), req, res); err == nil {
			n++
		}
	}
	return n
}

// --- HTTP -----------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *harness) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]bool{"ok": true})
	})
	mux.HandleFunc("/faults", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			var j faultRuleJSON
			if err := json.NewDecoder(r.Body).Decode(&j); err != nil {
				writeJSON(w, 400, map[string]string{"error": err.Error()})
				return
			}
			rule, err := h.faults.add(j)
			if err != nil {
				writeJSON(w, 400, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, 201, map[string]int{"id": rule.id})
		case http.MethodGet:
			writeJSON(w, 200, h.faults.list())
		case http.MethodDelete:
			h.faults.clear()
			writeJSON(w, 200, map[string]bool{"ok": true})
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/calls", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, h.calls.list(r.URL.Query().Get("method")))
		case http.MethodDelete:
			h.calls.clear()
			writeJSON(w, 200, map[string]bool{"ok": true})
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/sessions/expire", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		writeJSON(w, 200, map[string]int{"expired": h.expireAll()})
	})
	h.cbtControl(mux)
	h.provisioningControl(mux)
	h.consolidateControl(mux) // consolidate.go
	return mux
}
