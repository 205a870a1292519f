package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// Record is what the provisioner knows of an archive it made, kept where no tenant can
// write: enough to purge it after its class's retention, and only it. A directory a person named
// archived-something has no record and is never touched.
type Record struct {
	PV, Namespace, Claim, Class string
	// NamespaceUID tells the claim's namespace from a later one of the same name (empty when the
	// namespace was gone before the archive was recorded: such an archive cannot be restored).
	NamespaceUID  string
	Server, Share string
	Dir           string // the volume's directory, relative to the share
	// Archive is the archive's path relative to the share; empty while the rename is pending
	// (the record is written first, so a crash in between is finished by the retry).
	Archive string
	ID      string // the directory's export.Info ID: a rename keeps it, so it identifies the archive
	// Version is the NFS version the ID was read over (a file handle differs between NFSv3 and
	// NFSv4.1): the archive is looked at over it again. "" (records before it) is the default.
	Version    export.Version
	ArchivedAt time.Time
	// Purging is set before the sweeper starts removing the archive: one that may be half removed
	// is never restored.
	Purging bool
}

// Records stores archive records by PV name.
type Records interface {
	Put(ctx context.Context, r Record) error
	Get(ctx context.Context, pv string) (Record, bool, error)
	List(ctx context.Context) ([]Record, error)
	Delete(ctx context.Context, pv string) error
}

// labelArchive marks the ConfigMaps that are archive records; its value is the provisioner's
// name, shortened to fit a label value.
const labelArchive = "nfs-subdir-provisioner.io/archive-record"

// ConfigMapRecords keeps one ConfigMap per archive in the provisioner's own namespace.
type ConfigMapRecords struct {
	Client      kubernetes.Interface
	Namespace   string
	Provisioner string // PROVISIONER_NAME: records of other installs are not ours
}

var _ Records = (*ConfigMapRecords)(nil)

func (c *ConfigMapRecords) name(pv string) string {
	name := "nfsp-archive-" + pv
	if len(name) > 253 {
		sum := sha256.Sum256([]byte(pv))
		name = "nfsp-archive-" + hex.EncodeToString(sum[:16])
	}
	return name
}

func (c *ConfigMapRecords) label() string {
	sum := sha256.Sum256([]byte(c.Provisioner))
	return hex.EncodeToString(sum[:8]) // a label value of any provisioner name
}

// Put creates or replaces the record.
func (c *ConfigMapRecords) Put(ctx context.Context, r Record) error {
	cm := &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: c.name(r.PV), Namespace: c.Namespace, Labels: map[string]string{labelArchive: c.label()}},
		Data: map[string]string{
			"provisioner": c.Provisioner, "pv": r.PV, "namespace": r.Namespace, "namespaceUID": r.NamespaceUID, "claim": r.Claim, "storageClass": r.Class,
			"server": r.Server, "share": r.Share, "directory": r.Dir, "archive": r.Archive,
			"id": r.ID, "archivedAt": r.ArchivedAt.UTC().Format(time.RFC3339), "purging": strconv.FormatBool(r.Purging),
			"nfsVersion": string(r.Version),
		},
	}
	_, err := c.Client.CoreV1().ConfigMaps(c.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = c.Client.CoreV1().ConfigMaps(c.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("record archive of PV %s in ConfigMap %s/%s: %w", r.PV, c.Namespace, cm.Name, err)
	}
	return nil
}

// Get reads the record of pv.
func (c *ConfigMapRecords) Get(ctx context.Context, pv string) (Record, bool, error) {
	cm, err := c.Client.CoreV1().ConfigMaps(c.Namespace).Get(ctx, c.name(pv), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read the archive record of PV %s: %w", pv, err)
	}
	r, ok := c.decode(cm)
	return r, ok, nil
}

// List reads every record of this provisioner.
func (c *ConfigMapRecords) List(ctx context.Context) ([]Record, error) {
	list, err := c.Client.CoreV1().ConfigMaps(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelArchive + "=" + c.label()})
	if err != nil {
		return nil, fmt.Errorf("list archive records in %s: %w", c.Namespace, err)
	}
	var out []Record
	for i := range list.Items {
		if r, ok := c.decode(&list.Items[i]); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// Delete removes the record of pv; a missing one is no error.
func (c *ConfigMapRecords) Delete(ctx context.Context, pv string) error {
	err := c.Client.CoreV1().ConfigMaps(c.Namespace).Delete(ctx, c.name(pv), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the archive record of PV %s: %w", pv, err)
	}
	return nil
}

// decode reads a record; one of another provisioner, or malformed, is not a record. An archive
// path must be an archived-* sibling of the volume's directory, as archive makes it, so that no
// record can name anything else for the sweeper to remove.
func (c *ConfigMapRecords) decode(cm *v1.ConfigMap) (Record, bool) {
	d := cm.Data
	if d["id"] == "" || d["provisioner"] != c.Provisioner || d["pv"] == "" {
		return Record{}, false
	}
	if _, err := export.SplitPath(d["directory"], false); err != nil {
		return Record{}, false
	}
	if a := d["archive"]; a != "" {
		if _, err := export.SplitPath(a, false); err != nil || path.Dir(a) != path.Dir(d["directory"]) || !volume.IsArchiveName(path.Base(a)) {
			return Record{}, false
		}
	}
	at, _ := time.Parse(time.RFC3339, d["archivedAt"])
	return Record{
		PV: d["pv"], Namespace: d["namespace"], NamespaceUID: d["namespaceUID"], Claim: d["claim"], Class: d["storageClass"],
		Server: d["server"], Share: d["share"], Dir: d["directory"], Archive: d["archive"],
		ID: d["id"], ArchivedAt: at, Purging: d["purging"] == "true", Version: export.Version(d["nfsVersion"]),
	}, true
}
