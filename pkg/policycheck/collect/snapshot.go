package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"golang.org/x/sync/singleflight"
)

// Snapshot defaults.
const (
	DefaultSnapshotInterval = 5 * time.Minute
	DefaultSnapshotTimeout  = 2 * time.Minute
)

// SnapshotOptions configures a Snapshot.
type SnapshotOptions struct {
	// Interval between background refreshes.
	Interval time.Duration
	// Timeout bounds one refresh (all pages).
	Timeout time.Duration
	// Reader describes the identity behind the client, for messages.
	Reader string
	Logger *slog.Logger
}

// Snapshot collects from one paginated iam:GetAccountAuthorizationDetails
// snapshot of the account, refreshed in the background by Run. Lookups cost
// no AWS call; principals of other accounts are not found. Better than
// per-principal calls with many Upstreams.
type Snapshot struct {
	client SnapshotAPI
	opts   SnapshotOptions
	log    *slog.Logger
	sf     singleflight.Group

	mu    sync.RWMutex
	data  *accountData
	pages int
}

// accountData is one snapshot, indexed.
type accountData struct {
	at       time.Time
	account  string
	users    map[string]iamtypes.UserDetail
	groups   map[string]iamtypes.GroupDetail
	roles    map[string]iamtypes.RoleDetail
	policies map[string]iamtypes.ManagedPolicyDetail // by ARN
}

// NewSnapshot returns a Snapshot over client. Call Run (in a goroutine) to
// keep it fresh; Fetch loads it on first use otherwise.
func NewSnapshot(client SnapshotAPI, opts SnapshotOptions) *Snapshot {
	if opts.Interval <= 0 {
		opts.Interval = DefaultSnapshotInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultSnapshotTimeout
	}
	if opts.Reader == "" {
		opts.Reader = "the auditor identity"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Snapshot{client: client, opts: opts, log: opts.Logger}
}

// Run refreshes the snapshot now and then every Interval until ctx ends. A
// failed refresh is logged and keeps the last good snapshot.
func (s *Snapshot) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("IAM account snapshot refresh failed; keeping the last one", "error", err, "reader", s.opts.Reader)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh takes a new snapshot (concurrent callers share one).
func (s *Snapshot) Refresh(ctx context.Context) error {
	ch := s.sf.DoChan("refresh", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.Timeout)
		defer cancel()
		return nil, s.refresh(rctx)
	})
	select {
	case <-ctx.Done():
		return fmt.Errorf("IAM account snapshot: %w", ctx.Err())
	case res := <-ch:
		return res.Err
	}
}

// Pages is the number of GetAccountAuthorizationDetails pages of the last
// successful refresh.
func (s *Snapshot) Pages() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pages
}

// TakenAt is when the current snapshot was taken (zero before the first).
func (s *Snapshot) TakenAt() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return time.Time{}
	}
	return s.data.at
}

func (s *Snapshot) refresh(ctx context.Context) error {
	d := &accountData{
		at:       time.Now(),
		users:    map[string]iamtypes.UserDetail{},
		groups:   map[string]iamtypes.GroupDetail{},
		roles:    map[string]iamtypes.RoleDetail{},
		policies: map[string]iamtypes.ManagedPolicyDetail{},
	}
	p := iam.NewGetAccountAuthorizationDetailsPaginator(s.client, &iam.GetAccountAuthorizationDetailsInput{
		Filter: []iamtypes.EntityType{iamtypes.EntityTypeUser, iamtypes.EntityTypeRole, iamtypes.EntityTypeGroup,
			iamtypes.EntityTypeLocalManagedPolicy, iamtypes.EntityTypeAWSManagedPolicy},
	})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			if IsAccessDenied(err) {
				return &AccessDeniedError{Reader: s.opts.Reader, API: "iam:GetAccountAuthorizationDetails", Err: err}
			}
			return fmt.Errorf("iam:GetAccountAuthorizationDetails page %d: %w", pages+1, err)
		}
		pages++
		for _, u := range out.UserDetailList {
			d.users[aws.ToString(u.UserName)] = u
			d.noteAccount(aws.ToString(u.Arn))
		}
		for _, g := range out.GroupDetailList {
			d.groups[aws.ToString(g.GroupName)] = g
			d.noteAccount(aws.ToString(g.Arn))
		}
		for _, r := range out.RoleDetailList {
			d.roles[aws.ToString(r.RoleName)] = r
			d.noteAccount(aws.ToString(r.Arn))
		}
		for _, mp := range out.Policies {
			d.policies[aws.ToString(mp.Arn)] = mp
		}
	}
	s.mu.Lock()
	s.data, s.pages = d, pages
	s.mu.Unlock()
	s.log.Info("IAM account snapshot refreshed", "account", d.account, "users", len(d.users), "groups", len(d.groups),
		"roles", len(d.roles), "policies", len(d.policies), "pages", pages)
	return nil
}

func (d *accountData) noteAccount(a string) {
	if d.account != "" {
		return
	}
	if parsed, err := arn.Parse(a); err == nil {
		d.account = parsed.AccountID
	}
}

// Fetch implements Fetcher from the current snapshot, taking the first one
// if there is none yet.
func (s *Snapshot) Fetch(ctx context.Context, principalARN string) (*Policies, error) {
	ref, err := parsePrincipal(principalARN)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	d := s.data
	s.mu.RUnlock()
	if d == nil {
		if err := s.Refresh(ctx); err != nil {
			return nil, err
		}
		s.mu.RLock()
		d = s.data
		s.mu.RUnlock()
	}
	where := fmt.Sprintf("the IAM account snapshot of account %s", d.account)
	if d.account != "" && ref.account != d.account {
		return nil, &NotFoundError{Principal: principalARN, Where: where + " (another account)"}
	}
	var pol *Policies
	switch ref.kind {
	case "user":
		u, ok := d.users[ref.name]
		if !ok {
			return nil, &NotFoundError{Principal: principalARN, Where: where}
		}
		pol, err = d.user(u)
	default:
		r, ok := d.roles[ref.name]
		if !ok {
			return nil, &NotFoundError{Principal: principalARN, Where: where}
		}
		pol, err = d.role(r)
	}
	if err != nil {
		return nil, err
	}
	pol.Account = ref.account
	pol.Strategy = StrategyAccountSnapshot
	pol.CollectedAt = d.at
	pol.Notes = append(pol.Notes, fmt.Sprintf("from the IAM account snapshot taken %s", d.at.UTC().Format(time.RFC3339)))
	return pol, nil
}

func (d *accountData) user(u iamtypes.UserDetail) (*Policies, error) {
	self := "user/" + aws.ToString(u.UserName)
	pol := &Policies{Principal: aws.ToString(u.Arn), PrincipalType: "user"}
	var err error
	if pol.Identity, err = d.inline(u.UserPolicyList, self); err != nil {
		return nil, err
	}
	if err := d.appendAttached(pol, u.AttachedManagedPolicies, self); err != nil {
		return nil, err
	}
	for _, gname := range u.GroupList {
		pol.Groups = append(pol.Groups, gname)
		g, ok := d.groups[gname]
		if !ok {
			return nil, fmt.Errorf("IAM account snapshot: group %s of %s is missing from the snapshot", gname, self)
		}
		docs, err := d.inline(g.GroupPolicyList, "group/"+gname)
		if err != nil {
			return nil, err
		}
		pol.Identity = append(pol.Identity, docs...)
		if err := d.appendAttached(pol, g.AttachedManagedPolicies, "group/"+gname); err != nil {
			return nil, err
		}
	}
	if u.PermissionsBoundary != nil {
		b, err := d.managed(aws.ToString(u.PermissionsBoundary.PermissionsBoundaryArn), PermissionsBoundary, self)
		if err != nil {
			return nil, err
		}
		pol.PermissionsBoundary = &b
	}
	return pol, nil
}

func (d *accountData) role(r iamtypes.RoleDetail) (*Policies, error) {
	self := "role/" + aws.ToString(r.RoleName)
	pol := &Policies{Principal: aws.ToString(r.Arn), PrincipalType: "role"}
	trust, err := decodeDocument(aws.ToString(r.AssumeRolePolicyDocument), "trust policy of "+self)
	if err != nil {
		return nil, err
	}
	pol.TrustPolicy = &Document{Origin: Origin{Type: Trust, AttachedTo: self}, JSON: trust}
	if pol.Identity, err = d.inline(r.RolePolicyList, self); err != nil {
		return nil, err
	}
	if err := d.appendAttached(pol, r.AttachedManagedPolicies, self); err != nil {
		return nil, err
	}
	if r.PermissionsBoundary != nil {
		b, err := d.managed(aws.ToString(r.PermissionsBoundary.PermissionsBoundaryArn), PermissionsBoundary, self)
		if err != nil {
			return nil, err
		}
		pol.PermissionsBoundary = &b
	}
	return pol, nil
}

func (d *accountData) inline(list []iamtypes.PolicyDetail, attachedTo string) ([]Document, error) {
	var docs []Document
	for _, p := range list {
		doc, err := inlineDocument(aws.ToString(p.PolicyDocument), aws.ToString(p.PolicyName), attachedTo)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

func (d *accountData) appendAttached(pol *Policies, list []iamtypes.AttachedPolicy, attachedTo string) error {
	for _, a := range list {
		doc, err := d.managed(aws.ToString(a.PolicyArn), Managed, attachedTo)
		if err != nil {
			return err
		}
		pol.Identity = append(pol.Identity, doc)
	}
	return nil
}

var errNoDefaultVersion = errors.New("no default version in the snapshot")

// managed returns a managed policy's default version from the snapshot.
func (d *accountData) managed(policyARN string, t PolicyType, attachedTo string) (Document, error) {
	mp, ok := d.policies[policyARN]
	if !ok {
		return Document{}, fmt.Errorf("IAM account snapshot: managed policy %s attached to %s is missing from the snapshot", policyARN, attachedTo)
	}
	for _, v := range mp.PolicyVersionList {
		if !v.IsDefaultVersion && aws.ToString(v.VersionId) != aws.ToString(mp.DefaultVersionId) {
			continue
		}
		doc, err := decodeDocument(aws.ToString(v.Document), "managed policy "+policyARN)
		if err != nil {
			return Document{}, err
		}
		return Document{
			Origin: Origin{Type: t, AttachedTo: attachedTo, Name: aws.ToString(mp.PolicyName), PolicyARN: policyARN, VersionID: aws.ToString(v.VersionId)},
			JSON:   doc,
		}, nil
	}
	return Document{}, fmt.Errorf("IAM account snapshot: managed policy %s: %w", policyARN, errNoDefaultVersion)
}
