package awsemu

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ImageID is the AMI seeded instances run: one of the Ubuntu images moto loads into every region,
// so it is valid even with MOTO_ENABLE_AMI_VALIDATION.
const ImageID = "ami-1e749f67"

// iamRegion is where the (global) IAM API is called.
const iamRegion = "us-east-1"

// Seeder creates IAM principals, policies and EC2 instances in a moto server through the real
// AWS SDK. Its methods are safe for concurrent use.
type Seeder struct {
	srv   *Server
	creds aws.CredentialsProvider
	iam   *iam.Client

	mu  sync.Mutex
	ec2 map[string]*ec2.Client // by region
}

// Seeder returns a Seeder signing with SeedCredentials (fine while IAM enforcement is off).
func (s *Server) Seeder() *Seeder { return s.SeederWith(nil) }

// SeederWith returns a Seeder signing with creds, e.g. an admin user's keys after EnableAuth.
func (s *Server) SeederWith(creds aws.CredentialsProvider) *Seeder {
	return &Seeder{
		srv:   s,
		creds: creds,
		iam:   iam.NewFromConfig(s.Config(iamRegion, creds)),
		ec2:   map[string]*ec2.Client{},
	}
}

// IAM is the Seeder's IAM client, for calls it has no helper for.
func (sd *Seeder) IAM() *iam.Client { return sd.iam }

// EC2 is the Seeder's EC2 client for region.
func (sd *Seeder) EC2(region string) *ec2.Client {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	c, ok := sd.ec2[region]
	if !ok {
		c = ec2.NewFromConfig(sd.srv.Config(region, sd.creds))
		sd.ec2[region] = c
	}
	return c
}

// User is a seeded IAM user with one access key. Formatting it with %v or %#v never shows the
// secret access key.
type User struct {
	Name            string
	ARN             string
	AccessKeyID     string
	SecretAccessKey string
}

// Credentials are the user's static access key credentials.
func (u User) Credentials() aws.CredentialsProvider {
	return StaticCredentials(u.AccessKeyID, u.SecretAccessKey, "")
}

// String shows the user's name, ARN and access key id, not the secret.
func (u User) String() string {
	return fmt.Sprintf("{Name:%s ARN:%s AccessKeyID:%s SecretAccessKey:<redacted>}", u.Name, u.ARN, u.AccessKeyID)
}

// GoString is String, so %#v does not show the secret either.
func (u User) GoString() string { return "awsemu.User" + u.String() }

// Role is a seeded IAM role.
type Role struct {
	Name string
	ARN  string
}

// Instance is a seeded EC2 instance as DescribeInstances reports it right after launch.
type Instance struct {
	ID        string
	PrivateIP string
	PublicIP  string // "" when moto gave it none
	AZ        string
	State     string
	Tags      map[string]string
}

// CreateUser creates an IAM user and an access key for it.
func (sd *Seeder) CreateUser(ctx context.Context, name string) (User, error) {
	out, err := sd.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	if err != nil {
		return User{}, fmt.Errorf("create IAM user %q: %w", name, err)
	}
	u := User{Name: name, ARN: aws.ToString(out.User.Arn)}
	u.AccessKeyID, u.SecretAccessKey, err = sd.CreateAccessKey(ctx, name)
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// CreateAccessKey creates another access key for an existing user.
func (sd *Seeder) CreateAccessKey(ctx context.Context, userName string) (id, secret string, err error) {
	out, err := sd.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(userName)})
	if err != nil {
		return "", "", fmt.Errorf("create access key for IAM user %q: %w", userName, err)
	}
	return aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey), nil
}

// DeleteAccessKey deletes one of a user's access keys.
func (sd *Seeder) DeleteAccessKey(ctx context.Context, userName, accessKeyID string) error {
	_, err := sd.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{
		UserName: aws.String(userName), AccessKeyId: aws.String(accessKeyID),
	})
	if err != nil {
		return fmt.Errorf("delete access key %s of IAM user %q: %w", accessKeyID, userName, err)
	}
	return nil
}

// PutUserPolicy sets an inline policy (a JSON document) on a user.
func (sd *Seeder) PutUserPolicy(ctx context.Context, userName, policyName, doc string) error {
	_, err := sd.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName: aws.String(userName), PolicyName: aws.String(policyName), PolicyDocument: aws.String(doc),
	})
	if err != nil {
		return fmt.Errorf("put inline policy %q on IAM user %q: %w", policyName, userName, err)
	}
	return nil
}

// CreateManagedPolicy creates a customer managed policy and returns its ARN.
func (sd *Seeder) CreateManagedPolicy(ctx context.Context, name, doc string) (string, error) {
	out, err := sd.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{
		PolicyName: aws.String(name), PolicyDocument: aws.String(doc),
	})
	if err != nil {
		return "", fmt.Errorf("create managed policy %q: %w", name, err)
	}
	return aws.ToString(out.Policy.Arn), nil
}

// AttachUserPolicy attaches a managed policy to a user.
func (sd *Seeder) AttachUserPolicy(ctx context.Context, userName, policyARN string) error {
	_, err := sd.iam.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{
		UserName: aws.String(userName), PolicyArn: aws.String(policyARN),
	})
	if err != nil {
		return fmt.Errorf("attach policy %s to IAM user %q: %w", policyARN, userName, err)
	}
	return nil
}

// SetUserPermissionsBoundary makes a managed policy the user's permissions boundary.
// moto 5.2.5 does not implement PutUserPermissionsBoundary (it answers HTTP 500), so against it
// this always fails; role boundaries (SetRolePermissionsBoundary) work.
func (sd *Seeder) SetUserPermissionsBoundary(ctx context.Context, userName, policyARN string) error {
	_, err := sd.iam.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{
		UserName: aws.String(userName), PermissionsBoundary: aws.String(policyARN),
	})
	if err != nil {
		return fmt.Errorf("set permissions boundary %s on IAM user %q: %w", policyARN, userName, err)
	}
	return nil
}

// SetRolePermissionsBoundary makes a managed policy the role's permissions boundary. moto stores
// and reports it (GetRole, GetAccountAuthorizationDetails) but does not enforce it.
func (sd *Seeder) SetRolePermissionsBoundary(ctx context.Context, roleName, policyARN string) error {
	_, err := sd.iam.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{
		RoleName: aws.String(roleName), PermissionsBoundary: aws.String(policyARN),
	})
	if err != nil {
		return fmt.Errorf("set permissions boundary %s on IAM role %q: %w", policyARN, roleName, err)
	}
	return nil
}

// CreateGroup creates an IAM group and returns its ARN.
func (sd *Seeder) CreateGroup(ctx context.Context, name string) (string, error) {
	out, err := sd.iam.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("create IAM group %q: %w", name, err)
	}
	return aws.ToString(out.Group.Arn), nil
}

// AddUserToGroup makes a user a member of a group.
func (sd *Seeder) AddUserToGroup(ctx context.Context, groupName, userName string) error {
	_, err := sd.iam.AddUserToGroup(ctx, &iam.AddUserToGroupInput{
		GroupName: aws.String(groupName), UserName: aws.String(userName),
	})
	if err != nil {
		return fmt.Errorf("add IAM user %q to group %q: %w", userName, groupName, err)
	}
	return nil
}

// AttachGroupPolicy attaches a managed policy to a group.
func (sd *Seeder) AttachGroupPolicy(ctx context.Context, groupName, policyARN string) error {
	_, err := sd.iam.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{
		GroupName: aws.String(groupName), PolicyArn: aws.String(policyARN),
	})
	if err != nil {
		return fmt.Errorf("attach policy %s to IAM group %q: %w", policyARN, groupName, err)
	}
	return nil
}

// PutGroupPolicy sets an inline policy on a group.
func (sd *Seeder) PutGroupPolicy(ctx context.Context, groupName, policyName, doc string) error {
	_, err := sd.iam.PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{
		GroupName: aws.String(groupName), PolicyName: aws.String(policyName), PolicyDocument: aws.String(doc),
	})
	if err != nil {
		return fmt.Errorf("put inline policy %q on IAM group %q: %w", policyName, groupName, err)
	}
	return nil
}

// CreateRole creates an IAM role with a trust policy (who may assume it).
func (sd *Seeder) CreateRole(ctx context.Context, name, trustDoc string) (Role, error) {
	out, err := sd.iam.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustDoc),
	})
	if err != nil {
		return Role{}, fmt.Errorf("create IAM role %q: %w", name, err)
	}
	return Role{Name: name, ARN: aws.ToString(out.Role.Arn)}, nil
}

// PutRolePolicy sets an inline policy on a role.
func (sd *Seeder) PutRolePolicy(ctx context.Context, roleName, policyName, doc string) error {
	_, err := sd.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(roleName), PolicyName: aws.String(policyName), PolicyDocument: aws.String(doc),
	})
	if err != nil {
		return fmt.Errorf("put inline policy %q on IAM role %q: %w", policyName, roleName, err)
	}
	return nil
}

// AttachRolePolicy attaches a managed policy to a role.
func (sd *Seeder) AttachRolePolicy(ctx context.Context, roleName, policyARN string) error {
	_, err := sd.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{
		RoleName: aws.String(roleName), PolicyArn: aws.String(policyARN),
	})
	if err != nil {
		return fmt.Errorf("attach policy %s to IAM role %q: %w", policyARN, roleName, err)
	}
	return nil
}

// RunInstances launches n instances in region (one reservation) tagged with tags, and returns
// them as DescribeInstances then reports them (moto shows them running at once).
func (sd *Seeder) RunInstances(ctx context.Context, region string, n int, tags map[string]string) ([]Instance, error) {
	if n < 1 {
		return nil, fmt.Errorf("run instances in %s: n is %d, want at least 1", region, n)
	}
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(ImageID),
		InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount:     aws.Int32(int32(n)),
		MaxCount:     aws.Int32(int32(n)),
	}
	if len(tags) > 0 {
		in.TagSpecifications = []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeInstance, Tags: toEC2Tags(tags),
		}}
	}
	c := sd.EC2(region)
	out, err := c.RunInstances(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("run %d instances in %s: %w", n, region, err)
	}
	ids := make([]string, 0, len(out.Instances))
	for _, inst := range out.Instances {
		ids = append(ids, aws.ToString(inst.InstanceId))
	}
	return sd.DescribeInstances(ctx, region, ids...)
}

// DescribeInstances returns the given instances of region in the order of ids (all of the region
// when ids is empty, in moto's order), following every page.
func (sd *Seeder) DescribeInstances(ctx context.Context, region string, ids ...string) ([]Instance, error) {
	byID := map[string]Instance{}
	var order []string
	p := ec2.NewDescribeInstancesPaginator(sd.EC2(region), &ec2.DescribeInstancesInput{InstanceIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances in %s: %w", region, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				i := fromEC2Instance(inst)
				byID[i.ID] = i
				order = append(order, i.ID)
			}
		}
	}
	if len(ids) == 0 {
		ids = order
	}
	res := make([]Instance, 0, len(ids))
	for _, id := range ids {
		i, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("describe instances in %s: instance %s not returned", region, id)
		}
		res = append(res, i)
	}
	return res, nil
}

// CreateTags adds or overwrites tags on resources of region.
func (sd *Seeder) CreateTags(ctx context.Context, region string, ids []string, tags map[string]string) error {
	_, err := sd.EC2(region).CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: toEC2Tags(tags)})
	if err != nil {
		return fmt.Errorf("create tags on %v in %s: %w", ids, region, err)
	}
	return nil
}

// DeleteTags removes the tags with the given keys (any value) from resources of region.
func (sd *Seeder) DeleteTags(ctx context.Context, region string, ids []string, keys ...string) error {
	tags := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, ec2types.Tag{Key: aws.String(k)})
	}
	_, err := sd.EC2(region).DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: tags})
	if err != nil {
		return fmt.Errorf("delete tags %v from %v in %s: %w", keys, ids, region, err)
	}
	return nil
}

// StopInstances stops instances of region (moto reports them stopped at once).
func (sd *Seeder) StopInstances(ctx context.Context, region string, ids ...string) error {
	_, err := sd.EC2(region).StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids})
	if err != nil {
		return fmt.Errorf("stop instances %v in %s: %w", ids, region, err)
	}
	return nil
}

// TerminateInstances terminates instances of region (moto keeps listing them as terminated).
func (sd *Seeder) TerminateInstances(ctx context.Context, region string, ids ...string) error {
	_, err := sd.EC2(region).TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil {
		return fmt.Errorf("terminate instances %v in %s: %w", ids, region, err)
	}
	return nil
}

func toEC2Tags(tags map[string]string) []ec2types.Tag {
	out := make([]ec2types.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// TagMap turns EC2 tags into a map (empty, not nil, for no tags).
func TagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func fromEC2Instance(inst ec2types.Instance) Instance {
	i := Instance{
		ID:        aws.ToString(inst.InstanceId),
		PrivateIP: aws.ToString(inst.PrivateIpAddress),
		PublicIP:  aws.ToString(inst.PublicIpAddress),
		Tags:      TagMap(inst.Tags),
	}
	if inst.Placement != nil {
		i.AZ = aws.ToString(inst.Placement.AvailabilityZone)
	}
	if inst.State != nil {
		i.State = string(inst.State.Name)
	}
	return i
}
