// Package deploy holds no Go code: this test checks that the RBAC rules shipped in deploy/ and in
// the Helm chart grant exactly the API calls the provisioner makes.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// permission is one API verb on one resource.
type permission struct{ group, resource, verb string }

func (p permission) String() string {
	group := p.group
	if group == "" {
		group = "core"
	}
	return group + "/" + p.resource + ":" + p.verb
}

// resourceOf maps the typed client's accessor (CoreV1().PersistentVolumes()) to group and resource.
var resourceOf = map[string]permission{
	"PersistentVolumes":      {group: "", resource: "persistentvolumes"},
	"PersistentVolumeClaims": {group: "", resource: "persistentvolumeclaims"},
	"Events":                 {group: "", resource: "events"},
	"StorageClasses":         {group: "storage.k8s.io", resource: "storageclasses"},
	"Leases":                 {group: "coordination.k8s.io", resource: "leases"},
	"ConfigMaps":             {group: "", resource: "configmaps"},
	"Namespaces":             {group: "", resource: "namespaces"},
}

var verbOf = map[string]string{
	"Get": "get", "List": "list", "Watch": "watch", "Create": "create", "Update": "update",
	"UpdateStatus": "update", "Patch": "patch", "Delete": "delete", "DeleteCollection": "deletecollection",
}

var (
	// ctrl.client.CoreV1().PersistentVolumes().Create(   client.CoreV1().Events("")
	directCall = regexp.MustCompile(`\.(CoreV1|StorageV1|CoordinationV1)\(\)\.(\w+)\([^()]*\)\.(\w+)\(`)
	// factory.Core().V1().PersistentVolumes().Informer()
	informerCall = regexp.MustCompile(`\.(Core|Storage)\(\)\.V1\(\)\.(\w+)\(\)\.(Informer|Lister)\(\)`)
	// sink.Create(event) in client-go's event recorder
	sinkCall = regexp.MustCompile(`\bsink\.(Create|Update|Patch)\(`)
	// ll.Client.Leases(ns).Get( in client-go's LeaseLock
	leaseCall = regexp.MustCompile(`\.Leases\([^()]*\)\.(\w+)\(`)
)

// unreachable are library call sites the provisioner's configuration never reaches; each names the
// enclosing function and a check that must hold in our source for it to stay unreachable.
var unreachable = []struct {
	function string // library function containing the call
	reason   string
	ourCode  *regexp.Regexp // must match cmd/ or provisioner/ source
	mustNot  bool           // ourCode must NOT match instead
}{
	{"rescheduleProvisioning", "only after Provision returns ProvisioningReschedule, which this provisioner never does",
		regexp.MustCompile(`ProvisioningReschedule`), true},
	{"patchPersistentVolumeWithFinalizers", "only with controller.AddFinalizer(true), or for a PV of this provisioner carrying the library's finalizer, which neither this provisioner nor nfs-subdir-external-provisioner ever sets",
		regexp.MustCompile(`AddFinalizer\(`), true},
	{"NewProvisionController/leaderelection", "the library's own leader election, switched off (main.go runs its own)",
		regexp.MustCompile(`controller\.LeaderElection\(false\)`), false},
}

// usedPermissions reads the source of cmd/, provisioner/ and the library's controller and lists
// every API call they make.
func usedPermissions(t *testing.T) map[permission][]string {
	t.Helper()
	used := map[permission][]string{}
	add := func(p permission, where string) { used[p] = append(used[p], where) }
	dirs := moduleDirs(t, "sigs.k8s.io/sig-storage-lib-external-provisioner/v13", "k8s.io/client-go")
	libController := filepath.Join(dirs[0], "controller")
	var ours strings.Builder
	files := goFiles(t, "../cmd", "../provisioner")
	for _, file := range files {
		ours.Write(readFile(t, file))
	}
	for _, u := range unreachable {
		if matched := u.ourCode.MatchString(ours.String()); matched == u.mustNot {
			t.Errorf("library call site %s is assumed unreachable (%s), but our source no longer agrees (%s matched=%v)", u.function, u.reason, u.ourCode, matched)
		}
	}
	for _, file := range append(files, goFiles(t, libController)...) {
		src := string(readFile(t, file))
		if strings.HasPrefix(file, libController) {
			src = withoutFunctions(src, "rescheduleProvisioning", "patchPersistentVolumeWithFinalizers")
		}
		for _, m := range directCall.FindAllStringSubmatch(src, -1) {
			resource, ok := resourceOf[m[2]]
			verb, okVerb := verbOf[m[3]]
			if !ok || !okVerb {
				t.Errorf("%s: API call %s: resource or verb not known to this test; add it", file, m[0])
				continue
			}
			if m[2] == "Events" && m[3] != "Create" && m[3] != "Patch" {
				continue
			}
			if m[3] == "UpdateStatus" { // the status subresource
				resource.resource += "/status"
			}
			add(permission{resource.group, resource.resource, verb}, file)
		}
		for _, m := range informerCall.FindAllStringSubmatch(src, -1) {
			resource, ok := resourceOf[m[2]]
			if !ok {
				t.Errorf("%s: informer %s: resource not known to this test; add it", file, m[0])
				continue
			}
			add(permission{resource.group, resource.resource, "list"}, file)
			add(permission{resource.group, resource.resource, "watch"}, file)
		}
		if strings.Contains(src, "StartRecordingToSink(") {
			recorder := string(readFile(t, filepath.Join(dirs[1], "tools", "record", "event.go")))
			for _, m := range sinkCall.FindAllStringSubmatch(recorder, -1) {
				add(permission{"", "events", verbOf[m[1]]}, file+" (event recorder)")
			}
		}
		if strings.Contains(src, "resourcelock.LeaseLock{") {
			lock := string(readFile(t, filepath.Join(dirs[1], "tools", "leaderelection", "resourcelock", "leaselock.go")))
			for _, m := range leaseCall.FindAllStringSubmatch(lock, -1) {
				add(permission{"coordination.k8s.io", "leases", verbOf[m[1]]}, file+" (LeaseLock)")
			}
		}
	}
	// The events client is built as CoreV1().Events("") and handed to the recorder: its verbs
	// come from the recorder, counted above.
	if len(used) == 0 {
		t.Fatal("found no API calls at all; the source scan is broken")
	}
	return used
}

// withoutFunctions removes the bodies of the named top-level functions (methods included).
func withoutFunctions(src string, names ...string) string {
	for _, name := range names {
		start := regexp.MustCompile(`(?m)^func (\([^)]*\) )?` + name + `\(`).FindStringIndex(src)
		if start == nil {
			continue
		}
		end := strings.Index(src[start[1]:], "\n}\n")
		if end < 0 {
			continue
		}
		src = src[:start[0]] + src[start[1]+end+3:]
	}
	return src
}

func TestRBACMatchesAPICalls(t *testing.T) {
	used := usedPermissions(t)
	var lines []string
	for p, where := range used {
		lines = append(lines, p.String()+"  ("+strings.Join(dedupe(where), ", ")+")")
	}
	sort.Strings(lines)
	t.Logf("API calls the provisioner makes:\n  %s", strings.Join(lines, "\n  "))

	t.Run("deploy/rbac.yaml", func(t *testing.T) {
		compare(t, used, rulesIn(t, readFile(t, "rbac.yaml")))
	})
	t.Run("chart", func(t *testing.T) {
		helm := helmBinary(t)
		for _, values := range [][]string{
			{"--set", "nfs.server=nfs.example.com", "--set", "nfs.path=/export"},
			{"--set", "nfs.server=nfs.example.com", "--set", "nfs.path=/export", "--set", "leaderElection.enabled=false"},
		} {
			args := append([]string{"template", "rbac-check", "../charts/nfs-subdir-provisioner"}, values...)
			output, err := exec.Command(helm, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, output)
			}
			want := used
			if slices.Contains(values, "leaderElection.enabled=false") {
				want = map[permission][]string{}
				for p, where := range used {
					if p.resource != "leases" {
						want[p] = where
					}
				}
			}
			t.Logf("helm %s", strings.Join(args[1:], " "))
			compare(t, want, rulesIn(t, output))
		}
	})
}

// compare fails on a wildcard, on a permission the code needs and the rules lack, and on one the
// rules grant and the code never uses.
func compare(t *testing.T, used map[permission][]string, granted map[permission]bool) {
	t.Helper()
	for p := range used {
		if !granted[p] {
			t.Errorf("missing: %s is used (%s) but not granted", p, strings.Join(dedupe(used[p]), ", "))
		}
	}
	for p := range granted {
		if _, ok := used[p]; !ok {
			t.Errorf("extra: %s is granted but the code never uses it", p)
		}
	}
}

// rulesIn collects the rules of every ClusterRole and Role in a multi-document YAML stream,
// failing on wildcards and non-resource URLs.
func rulesIn(t *testing.T, manifest []byte) map[permission]bool {
	t.Helper()
	granted := map[permission]bool{}
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	roles := 0
	for {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding manifests: %v", err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var meta struct{ Kind string }
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind != "ClusterRole" && meta.Kind != "Role" {
			continue
		}
		roles++
		var role rbacv1.ClusterRole // Role has the same rules field
		if err := json.Unmarshal(raw, &role); err != nil {
			t.Fatal(err)
		}
		for _, rule := range role.Rules {
			if len(rule.NonResourceURLs) > 0 {
				t.Errorf("%s %s grants non-resource URLs %v", meta.Kind, role.Name, rule.NonResourceURLs)
			}
			for _, group := range rule.APIGroups {
				for _, resource := range rule.Resources {
					for _, verb := range rule.Verbs {
						if group == "*" || resource == "*" || verb == "*" {
							t.Errorf("%s %s has a wildcard: groups %v resources %v verbs %v", meta.Kind, role.Name, rule.APIGroups, rule.Resources, rule.Verbs)
						}
						granted[permission{group, resource, verb}] = true
					}
				}
			}
		}
	}
	if roles == 0 {
		t.Fatal("no ClusterRole or Role found")
	}
	return granted
}

func helmBinary(t *testing.T) string {
	t.Helper()
	// The bed's helm, where e2e/testbed/build-helm.sh builds it (--path: find, do not build).
	out, err := exec.Command(filepath.Join("..", "e2e", "testbed", "build-helm.sh"), "--path").Output()
	if err != nil {
		t.Fatalf("e2e/testbed/build-helm.sh --path: %v", err)
	}
	helm := strings.TrimSpace(string(out))
	if _, err := os.Stat(helm); err != nil {
		if os.Getenv("NFSP_REQUIRE_HELM") == "1" {
			t.Fatalf("helm is required (NFSP_REQUIRE_HELM=1) but %s is missing: run e2e/testbed/build-helm.sh", helm)
		}
		t.Skipf("%s is missing (e2e/testbed/build-helm.sh builds it); set NFSP_REQUIRE_HELM=1 to fail instead", helm)
	}
	return helm
}

func moduleDirs(t *testing.T, modules ...string) []string {
	t.Helper()
	args := append([]string{"list", "-m", "-f", "{{.Dir}}"}, modules...)
	output, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	dirs := strings.Fields(string(output))
	if len(dirs) != len(modules) {
		t.Fatalf("go list -m gave %q for %v (is the module cache populated? go mod download)", dirs, modules)
	}
	return dirs
}

func goFiles(t *testing.T, roots ...string) []string {
	t.Helper()
	var files []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, entry os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !entry.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no Go files under %v", roots)
	}
	return files
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return content
}

func dedupe(values []string) []string {
	sort.Strings(values)
	return slices.Compact(values)
}
