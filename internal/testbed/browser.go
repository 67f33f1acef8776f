package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// BrowserTimeout bounds a whole CheckInBrowser: browser start, every page, every screenshot.
const BrowserTimeout = 60 * time.Second

// browserNames are the executables FindBrowser looks for, Debian's first.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome"}

// FindBrowser returns the path of a Chromium-based browser on PATH.
func FindBrowser() (string, error) {
	for _, name := range browserNames {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no browser on PATH (looked for %s)", strings.Join(browserNames, ", "))
}

// Viewport is a browser window size; Mobile also honours the page's viewport meta tag.
type Viewport struct {
	Name          string
	Width, Height int64
	Mobile        bool
}

// Viewports are the sizes every page is checked at: a small phone and a laptop.
var Viewports = []Viewport{
	{Name: "375", Width: 375, Height: 800, Mobile: true},
	{Name: "1280", Width: 1280, Height: 800},
}

// PageStyle is what app/html/style.css sets on body, as getComputedStyle reports it.
type PageStyle struct{ Background, Color string }

// CheckInBrowser loads the site at baseURL (ending in "/") in headless Chromium, the index
// page and a missing page, at each of Viewports, and fails t unless each page answers with
// its status, is styled by appDir's stylesheet, logs no console error, exception or
// Content-Security-Policy violation and does not scroll sideways. It saves a full-page PNG
// of each into shotDir and logs its path. A subtest proves the error and CSP detection by
// breaking the served page on purpose. Without a browser it calls Unavailable. opts are
// more options for the browser, such as TrustingCA.
func CheckInBrowser(t *testing.T, baseURL, appDir, shotDir string, opts ...chromedp.ExecAllocatorOption) {
	t.Helper()
	want, err := StylesheetBody(filepath.Join(appDir, "html", "style.css"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	shotDir, err = filepath.Abs(shotDir)
	if err != nil {
		t.Fatal(err)
	}
	browser := StartBrowser(t, opts...)

	pages := []struct {
		name, url string
		status    int64
	}{
		{"index", baseURL, 200},
		{"404", baseURL + "no/such/page", 404},
	}
	for _, p := range pages {
		for _, vp := range Viewports {
			t.Run(p.name+"-"+vp.Name, func(t *testing.T) {
				v, err := Visit(browser, p.url, vp, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range v.Warnings {
					t.Logf("console warning: %s", w)
				}
				for _, problem := range v.Problems(p.status, want) {
					t.Error(problem)
				}
				shot := filepath.Join(shotDir, p.name+"-"+vp.Name+".png")
				if err := os.WriteFile(shot, v.Screenshot, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("screenshot: %s", shot)
			})
		}
	}

	// The page above passes only if the listeners are not deaf: break the served page
	// (inline script and style, which its CSP forbids; a console.error; an uncaught
	// exception) and require the same verdict to report every one of them.
	t.Run("detects errors and CSP violations", func(t *testing.T) {
		v, err := Visit(browser, baseURL, Viewports[0], breakPage)
		if err != nil {
			t.Fatal(err)
		}
		problems := v.Problems(200, want)
		for _, kind := range []string{"CSP violation (securitypolicyviolation", "browser log error (security)", "console.error", "uncaught exception"} {
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, kind) }) {
				t.Errorf("a broken page reported no %q: the check is blind to it; got %q", kind, problems)
			}
		}
		if v.InlineScriptRan {
			t.Error("an inline script ran despite the Content-Security-Policy")
		}
		if v.Style != want {
			t.Errorf("body style %+v after injecting an inline <style>, want %+v: the CSP did not block it", v.Style, want)
		}
		t.Logf("a broken page is reported: %q", problems)
	})
}

// StartBrowser starts headless Chromium for the test, bounded by BrowserTimeout, with
// extra options, and returns a chromedp context for it; each Visit opens its own tab. It
// calls Unavailable when no browser is installed.
func StartBrowser(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path, err := FindBrowser()
	if err != nil {
		Unavailable(t, err.Error(), "apt-get install -y chromium")
	}
	tmp := browserTempDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), BrowserTimeout)
	t.Cleanup(cancel)
	var output LockedBuffer
	opts := slices.Concat(chromedp.DefaultExecAllocatorOptions[:], []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		// Its own temp files (the profile's singleton socket, which it leaves behind in
		// /tmp) go where the test removes them.
		chromedp.Env("TMPDIR=" + tmp),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.CombinedOutput(&output),
	}, extra)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser) // runs first: closes the browser before its allocator
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, output.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser output (D-Bus noise left out):\n%s", withoutDBus(output.String()))
		}
	})
	return browser
}

// browserTempDir is a directory for the browser's temp files, removed once the browser
// has gone: its cleanup is registered before the browser's, so it runs after them.
func browserTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "custom-nginx-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Child processes of the browser may still write for a moment after it exited.
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if err = os.RemoveAll(dir); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Logf("leaving the browser's temp files in %s: %v", dir, err)
		}
	})
	return dir
}

// PageVisit is what one load of a page showed.
type PageVisit struct {
	URL        string
	Status     int64
	ReadyState string
	Style      PageStyle
	// ScrollWidth > ClientWidth of the root element means the page scrolls sideways.
	ScrollWidth, ClientWidth int64
	// Errors: console.error/assert, uncaught exceptions, browser log errors, failed loads.
	Errors   []ConsoleEntry
	Warnings []ConsoleEntry
	// CSPViolations are the page's securitypolicyviolation DOM events.
	CSPViolations   []string
	InlineScriptRan bool
	Screenshot      []byte // PNG of the full page
}

// Problems is the verdict on a visit: empty when the page answered status, is styled as
// want, logged no error and does not scroll sideways.
func (v *PageVisit) Problems(status int64, want PageStyle) []string {
	var problems []string
	if v.Status != status {
		problems = append(problems, fmt.Sprintf("%s: status %d, want %d", v.URL, v.Status, status))
	}
	if v.ReadyState != "complete" {
		problems = append(problems, fmt.Sprintf("%s: document.readyState %q, want complete", v.URL, v.ReadyState))
	}
	if v.Style != want {
		problems = append(problems, fmt.Sprintf("%s: body computed style %+v, want %+v from the stylesheet: style.css not applied", v.URL, v.Style, want))
	}
	if v.ScrollWidth > v.ClientWidth {
		problems = append(problems, fmt.Sprintf("%s: scrolls sideways: scrollWidth %d > clientWidth %d", v.URL, v.ScrollWidth, v.ClientWidth))
	}
	for _, e := range v.Errors {
		// A 404 page's own status is logged as a failed load: that one is expected.
		if status == 404 && e.IsNotFound(v.URL) {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s: %s", v.URL, e))
	}
	for _, c := range v.CSPViolations {
		problems = append(problems, fmt.Sprintf("%s: CSP violation (securitypolicyviolation event): %s", v.URL, c))
	}
	return problems
}

// ConsoleEntry is one message of the page's console.
type ConsoleEntry struct {
	Kind   string // console.error, uncaught exception, browser log error, load failed
	Source string // of a browser log entry: network, security, ...
	URL    string // of the resource a browser log entry is about, if any
	Text   string
}

func (e ConsoleEntry) String() string {
	s := e.Kind
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	if e.URL != "" {
		s += " " + e.URL
	}
	return s + ": " + e.Text
}

// IsNotFound reports whether e is the browser's log of a 404 answer for resourceURL.
func (e ConsoleEntry) IsNotFound(resourceURL string) bool {
	return e.Kind == "browser log error" && e.Source == string(log.EntrySourceNetwork) && e.URL == resourceURL &&
		strings.Contains(e.Text, "status of 404")
}

// cspListener runs before any script of each new document (DevTools scripts are exempt
// from the CSP) and records the page's CSP violations where Visit can read them.
const cspListener = `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => {
	window.__cspViolations.push(e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') + ' (' + e.sourceFile + ':' + e.lineNumber + ')');
});`

// breakPage, run in a loaded page, commits one of each fault the check must catch.
const breakPage = `(() => {
	const script = document.createElement('script');
	script.textContent = 'window.__inlineScriptRan = true';
	document.head.append(script);
	const style = document.createElement('style');
	style.textContent = 'body { background: red !important; color: red !important; }';
	document.head.append(style);
	console.error('self-check: console.error');
	setTimeout(() => { throw new Error('self-check: uncaught'); });
})()`

// Visit opens pageURL in a new tab of browser at viewport vp, waits for it to load, runs
// inject (if not empty) and returns what the page showed, with a full-page PNG screenshot.
func Visit(browser context.Context, pageURL string, vp Viewport, inject string) (*PageVisit, error) {
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()

	console := &consoleRecorder{}
	// Listen, not Events: events that arrive before a command's reply are seen before it
	// returns, so nothing the page logged during the load is missed.
	if err := chromedp.Listen(tab, console.record); err != nil {
		return nil, err
	}
	if err := prepareTab(tab, vp); err != nil {
		return nil, err
	}
	resp, err := chromedp.Run(tab, chromedp.NavigateResponse(pageURL))
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", pageURL, err)
	}
	v := &PageVisit{URL: pageURL, Status: resp.Status}
	if inject != "" {
		if err := injectInto(tab, pageURL, inject); err != nil {
			return nil, err
		}
	}
	if err := readPageState(tab, v); err != nil {
		return nil, err
	}
	if v.Screenshot, err = chromedp.Run(tab, chromedp.FullScreenshot(100)); err != nil {
		return nil, fmt.Errorf("screenshot of %s: %w", pageURL, err)
	}
	// Read last: the screenshot's frame has given queued violation events time to fire.
	if v.CSPViolations, err = chromedp.Run(tab, chromedp.Evaluate[[]string](`window.__cspViolations || ['listener missing: the check would be blind']`)); err != nil {
		return nil, fmt.Errorf("reading CSP violations of %s: %w", pageURL, err)
	}
	v.Errors, v.Warnings = console.entries()
	return v, nil
}

// consoleRecorder keeps what a tab's console and browser log say, as chromedp's
// goroutines deliver it.
type consoleRecorder struct {
	mu               sync.Mutex
	errors, warnings []ConsoleEntry
}

func (r *consoleRecorder) add(list *[]ConsoleEntry, e ConsoleEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*list = append(*list, e)
}

// entries is what was recorded so far.
func (r *consoleRecorder) entries() (errors, warnings []ConsoleEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errors), slices.Clone(r.warnings)
}

// record is the tab's event listener: errors and warnings of the console, uncaught
// exceptions, browser log entries and failed loads.
func (r *consoleRecorder) record(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			r.add(&r.errors, ConsoleEntry{Kind: "console." + string(ev.Type), Text: argsText(ev.Args)})
		case runtime.ConsoleAPICalledTypeWarning:
			r.add(&r.warnings, ConsoleEntry{Kind: "console.warn", Text: argsText(ev.Args)})
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d == nil {
			r.add(&r.errors, ConsoleEntry{Kind: "uncaught exception", Text: "(no details)"})
			return
		}
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		r.add(&r.errors, ConsoleEntry{Kind: "uncaught exception", Text: text})
	case *log.EventEntryAdded:
		// CSP violations and failed subresource loads arrive here.
		e := ev.Entry
		if e == nil {
			return // nothing to report; Listen's func must not panic
		}
		switch e.Level {
		case log.EntryLevelError:
			r.add(&r.errors, ConsoleEntry{Kind: "browser log error", Source: string(e.Source), URL: e.URL, Text: e.Text})
		case log.EntryLevelWarning:
			r.add(&r.warnings, ConsoleEntry{Kind: "browser log warning", Source: string(e.Source), URL: e.URL, Text: e.Text})
		}
	case *network.EventLoadingFailed:
		// A blocked or broken subresource, such as the stylesheet.
		r.add(&r.errors, ConsoleEntry{Kind: "load failed", Text: fmt.Sprintf("%s of a %s (blocked: %q)", ev.ErrorText, ev.Type, ev.BlockedReason)})
	}
}

// prepareTab turns on the browser log and the CSP listener for every document of the
// tab, and sets its viewport.
func prepareTab(tab context.Context, vp Viewport) error {
	return chromedp.Do(tab,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			// Enabled by chromedp already; enabled here too so CSP reports cannot silently stop.
			if _, err := cdp.Call(ctx, t, log.Enable, cdp.Empty{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspListener})
			return err
		}),
		viewportAction(vp),
	)
}

// injectInto runs script in the loaded page and waits for what it set off to be reported.
func injectInto(tab context.Context, pageURL, script string) error {
	if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		return fmt.Errorf("injecting into %s: %w", pageURL, err)
	}
	// Violation reports and the timer's exception arrive asynchronously.
	return chromedp.Do(tab, chromedp.Sleep(300*time.Millisecond))
}

// readPageState fills in v what the loaded page reports of itself: its ready state, the
// body's computed style, its widths, and whether an inline script ran.
func readPageState(tab context.Context, v *PageVisit) error {
	type state struct {
		ReadyState               string
		Background, Color        string
		ScrollWidth, ClientWidth int64
		InlineScriptRan          bool
	}
	s, err := chromedp.Run(tab, chromedp.Evaluate[state](`(() => {
		const body = getComputedStyle(document.body), root = document.documentElement;
		return {
			ReadyState: document.readyState,
			Background: body.backgroundColor, Color: body.color,
			ScrollWidth: root.scrollWidth, ClientWidth: root.clientWidth,
			InlineScriptRan: window.__inlineScriptRan === true,
		};
	})()`))
	if err != nil {
		return fmt.Errorf("reading %s: %w", v.URL, err)
	}
	v.ReadyState, v.Style = s.ReadyState, PageStyle{Background: s.Background, Color: s.Color}
	v.ScrollWidth, v.ClientWidth, v.InlineScriptRan = s.ScrollWidth, s.ClientWidth, s.InlineScriptRan
	return nil
}

func viewportAction(vp Viewport) chromedp.Action[chromedp.Void] {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
	if vp.Mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	return chromedp.EmulateViewport(vp.Width, vp.Height, opts...)
}

func argsText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s) // a string argument, unquoted as the console shows it
			} else {
				parts = append(parts, string(a.Value))
			}
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

var (
	bodyRule    = regexp.MustCompile(`(?s)(?:^|[}\s])body\s*\{([^}]*)\}`)
	hexColorRGB = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
)

// StylesheetBody reads the background and text colour the stylesheet gives body, in the
// form getComputedStyle reports them ("rgb(r, g, b)"): a page with the defaults instead
// did not get the stylesheet.
func StylesheetBody(cssPath string) (PageStyle, error) {
	css, err := os.ReadFile(cssPath)
	if err != nil {
		return PageStyle{}, err
	}
	m := bodyRule.FindSubmatch(css)
	if m == nil {
		return PageStyle{}, fmt.Errorf("%s has no body rule", cssPath)
	}
	decls := map[string]string{}
	for _, decl := range strings.Split(string(m[1]), ";") {
		if name, value, ok := strings.Cut(decl, ":"); ok {
			decls[strings.TrimSpace(name)] = strings.TrimSpace(value)
		}
	}
	var style PageStyle
	var problems []error
	for _, p := range []struct {
		into  *string
		names []string
	}{
		{&style.Background, []string{"background-color", "background"}},
		{&style.Color, []string{"color"}},
	} {
		var value string
		for _, name := range p.names {
			if value = decls[name]; value != "" {
				break
			}
		}
		rgb, err := hexToRGB(value)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: body %s: %w (the browser check compares it with getComputedStyle)", cssPath, p.names[0], err))
		}
		*p.into = rgb
	}
	return style, errors.Join(problems...)
}

// hexToRGB turns #rgb or #rrggbb into getComputedStyle's "rgb(r, g, b)".
func hexToRGB(hex string) (string, error) {
	if !hexColorRGB.MatchString(hex) {
		return "", fmt.Errorf("%q is not a #rgb or #rrggbb colour", hex)
	}
	digits := hex[1:]
	if len(digits) == 3 {
		digits = string([]byte{digits[0], digits[0], digits[1], digits[1], digits[2], digits[2]})
	}
	n, err := strconv.ParseUint(digits, 16, 32)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("rgb(%d, %d, %d)", n>>16, n>>8&0xff, n&0xff), nil
}

// withoutDBus drops the browser's complaints about the missing D-Bus, harmless here.
func withoutDBus(output string) string {
	lines := strings.Split(output, "\n")
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, ":ERROR:dbus/") }), "\n")
}
