package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/yaml"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
)

const chartDir = "../charts/nfs-subdir-provisioner"

// sampleParameters is a value the provisioner accepts for each of its StorageClass parameters.
// A parameter added to class.Params without one here fails TestChartClassParameters: the chart
// must learn it too.
var sampleParameters = map[string]string{
	class.ParamArchiveOnDelete:   "false",
	class.ParamOnDelete:          "delete",
	class.ParamPathPattern:       "${.PVC.namespace}/${.PVC.name}",
	class.ParamServer:            "nfs-2.example",
	class.ParamShare:             "/exports/other",
	class.ParamMode:              "0770",
	class.ParamUID:               "1000",
	class.ParamGID:               "2000",
	class.ParamReuseDirectory:    "never",
	class.ParamClaimUIDs:         "1000-1999,2500",
	class.ParamClaimGIDs:         "none",
	class.ParamClaimMode:         "none",
	class.ParamCheckAvailable:    "true",
	class.ParamAvailableHeadroom: "10Gi",
	class.ParamArchiveRetention:  "720h",
	class.ParamNFSVersion:        "4.1",
}

// Every class parameter the provisioner takes is in the chart's schema, in its README, and
// renders on both the main class and an extra one; and the schema knows no parameter the
// provisioner would refuse.
func TestChartClassParameters(t *testing.T) {
	var goNames []string
	for _, p := range class.Params {
		goNames = append(goNames, p.Name)
		if _, ok := sampleParameters[p.Name]; !ok {
			t.Errorf("class parameter %q has no sample value here: add it, and make sure the chart can set it", p.Name)
		}
		// Every sample is one the provisioner takes.
		if _, err := class.Parse(map[string]string{p.Name: sampleParameters[p.Name]}); err != nil && p.Name != class.ParamArchiveRetention {
			t.Errorf("sample %s=%q: %v", p.Name, sampleParameters[p.Name], err)
		}
	}
	sort.Strings(goNames)

	var schema struct {
		Definitions map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	raw, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var schemaNames []string
	for name := range schema.Definitions["classParameters"].Properties {
		schemaNames = append(schemaNames, name)
	}
	sort.Strings(schemaNames)
	if !reflect.DeepEqual(goNames, schemaNames) {
		t.Errorf("values.schema.json definitions.classParameters has %v, the provisioner takes %v", schemaNames, goNames)
	}

	readme, err := os.ReadFile(chartDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "## Class parameters"); i >= 0 {
		section = section[i:]
	}
	for _, name := range goNames {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("the chart README's Class parameters table does not name %q", name)
		}
	}

	values, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var defaults struct {
		StorageClass map[string]any `json:"storageClass"`
	}
	if err := yaml.Unmarshal(values, &defaults); err != nil {
		t.Fatal(err)
	}
	helm := helmBinary(t)
	for _, name := range goNames {
		value := sampleParameters[name]
		// On the main class, a parameter with a key of its own is set there (it wins over
		// storageClass.parameters); any other through storageClass.parameters.
		main := "storageClass.parameters." + name
		if _, own := defaults.StorageClass[name]; own {
			main = "storageClass." + name
		}
		for _, where := range []string{main, "extraStorageClasses[0].parameters." + name} {
			args := []string{"template", "r", chartDir, "-s", "templates/storageclass.yaml", "--set", "nfs.server=nfs.example",
				"--set", "extraStorageClasses[0].name=extra", "--set-string", where + "=" + strings.ReplaceAll(value, ",", `\,`)}
			classes := renderClasses(t, helm, args)
			want := "nfs-client"
			if strings.HasPrefix(where, "extra") {
				want = "extra"
			}
			if got := classes[want].Parameters[name]; got != value {
				t.Errorf("helm template --set-string %s=%q: StorageClass %s has %s=%q", where, value, want, name, got)
			}
		}
	}
}

// renderClasses runs helm with args and returns the StorageClasses it renders, by name.
func renderClasses(t *testing.T, helm string, args []string) map[string]storagev1.StorageClass {
	t.Helper()
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	classes := map[string]storagev1.StorageClass{}
	for _, doc := range strings.Split(string(out), "\n---") {
		var sc storagev1.StorageClass
		if err := yaml.Unmarshal([]byte(doc), &sc); err != nil {
			t.Fatalf("rendered StorageClass: %v\n%s", err, doc)
		}
		if sc.Name != "" {
			classes[sc.Name] = sc
		}
	}
	return classes
}

// The chart README's values table is values.yaml's: every key of values.yaml is in the table (a
// key or one of its parents), every key in the table is in values.yaml, and the defaults the
// table gives as values are values.yaml's.
func TestChartValuesTable(t *testing.T) {
	raw, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(chartDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := valuesTable(t, string(readme))
	documented := map[string]bool{}
	// Accepted for the other chart's values files, and not in values.yaml on purpose.
	notInValues := map[string]bool{"buildMode": true}
	for _, row := range rows {
		for i, key := range row.keys {
			documented[key] = true
			v, ok := lookup(values, key)
			if !ok {
				if !notInValues[key] {
					t.Errorf("README values table names %q, which values.yaml does not have", key)
				}
				continue
			}
			if i < len(row.defaults) {
				checkDefault(t, key, row.defaults[i], v)
			}
		}
	}
	for _, key := range leafKeys("", values) {
		covered := false
		for k := key; k != ""; k = parentKey(k) {
			covered = covered || documented[k]
		}
		if !covered {
			t.Errorf("values.yaml key %q is not in the README values table", key)
		}
	}
}

type valuesRow struct {
	keys     []string
	defaults []string // the backticked values at the start of the Default cell
}

var backticked = regexp.MustCompile("`([^`]*)`")

// valuesTable reads the "## Values" table: a key cell such as "`storageClass.mode`, `.uid`" is
// storageClass.mode and storageClass.uid; a default cell such as "`false`, `\"\"`" gives a value
// for each key in turn (text after the backticked values, like "(10s)", is commentary).
func valuesTable(t *testing.T, readme string) []valuesRow {
	t.Helper()
	i := strings.Index(readme, "## Values")
	if i < 0 {
		t.Fatal("the chart README has no Values section")
	}
	var rows []valuesRow
	for _, line := range strings.Split(readme[i:], "\n")[1:] {
		if strings.HasPrefix(line, "## ") {
			break
		}
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) < 3 {
			continue
		}
		var row valuesRow
		base := ""
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			key := m[1]
			if strings.HasPrefix(key, ".") {
				key = base + key
			} else {
				base = parentKey(key)
			}
			row.keys = append(row.keys, key)
		}
		def := strings.TrimSpace(cells[1])
		for strings.HasPrefix(def, "`") {
			end := strings.Index(def[1:], "`")
			if end < 0 {
				break
			}
			row.defaults = append(row.defaults, def[1:end+1])
			def = strings.TrimLeft(def[end+2:], ", ")
		}
		rows = append(rows, row)
	}
	if len(rows) < 20 {
		t.Fatalf("read %d rows of the values table; is it still a table?", len(rows))
	}
	return rows
}

func parentKey(key string) string {
	if i := strings.LastIndex(key, "."); i >= 0 {
		return key[:i]
	}
	return ""
}

func lookup(values map[string]any, key string) (any, bool) {
	var v any = values
	for _, part := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

func leafKeys(prefix string, m map[string]any) []string {
	var keys []string
	for k, v := range m {
		key := strings.TrimPrefix(prefix+"."+k, ".")
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			keys = append(keys, leafKeys(key, sub)...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

// checkDefault compares a default the table gives with values.yaml's, when both are plain values.
func checkDefault(t *testing.T, key, documented string, actual any) {
	t.Helper()
	switch actual.(type) {
	case map[string]any, []any:
		if documented != "{}" && documented != "[]" || fmt.Sprint(actual) != "map[]" && fmt.Sprint(actual) != "[]" {
			return // a structure: the table describes it in words
		}
		return
	}
	var want any
	if err := yaml.Unmarshal([]byte(documented), &want); err != nil {
		return // words, not a value
	}
	if actual == nil && documented == `""` {
		return
	}
	if fmt.Sprint(want) != fmt.Sprint(actual) {
		t.Errorf("README values table: %s defaults to %s, values.yaml has %v", key, documented, actual)
	}
}
