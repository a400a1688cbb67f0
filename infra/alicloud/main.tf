# The resources around the promrelay function on Alibaba Cloud: the
# function's RAM role (Function Compute hands its STS credentials to every
# invocation, and promrelay signs its writes to ARMS with them), a policy
# that lets it write to the Managed Service for Prometheus instance,
# optionally an OSS bucket for the group store, and with enable_read a role
# and read-only policy for the read function (functions/fc-read).

data "alicloud_account" "current" {}

resource "alicloud_ram_role" "relay" {
  name        = "${var.name}-fc"
  description = "promrelay function: remote write to Managed Service for Prometheus"
  document = jsonencode({
    Version = "1"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = ["fc.aliyuncs.com"] }
    }]
  })
  force = true
}

locals {
  arms_resource = "acs:arms:${var.region}:${data.alicloud_account.current.id}:prometheus/${var.arms_instance_id}"
  statements = concat([{
    Effect   = "Allow"
    Action   = var.arms_actions
    Resource = [local.arms_resource]
    }], var.create_state_bucket ? [{
    Effect   = "Allow"
    Action   = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:ListObjects"]
    Resource = ["acs:oss:*:*:${alicloud_oss_bucket.state[0].bucket}", "acs:oss:*:*:${alicloud_oss_bucket.state[0].bucket}/*"]
  }] : [])
}

resource "alicloud_ram_policy" "relay" {
  policy_name     = "${var.name}-remote-write"
  description     = "promrelay: write to Managed Service for Prometheus"
  policy_document = jsonencode({ Version = "1", Statement = local.statements })
  force           = true
}

resource "alicloud_ram_role_policy_attachment" "relay" {
  role_name   = alicloud_ram_role.relay.name
  policy_name = alicloud_ram_policy.relay.policy_name
  policy_type = "Custom"
}

resource "random_id" "bucket" {
  count       = var.create_state_bucket ? 1 : 0
  byte_length = 4
}

resource "alicloud_oss_bucket" "state" {
  count  = var.create_state_bucket ? 1 : 0
  bucket = "${var.name}-state-${random_id.bucket[0].hex}"

  # Versioning keeps every overwritten group: expire the old versions.
  lifecycle_rule {
    id      = "expire-noncurrent-versions"
    enabled = true
    noncurrent_version_expiration {
      days = var.state_noncurrent_days
    }
  }
}

resource "alicloud_oss_bucket_versioning" "state" {
  count  = var.create_state_bucket ? 1 : 0
  bucket = alicloud_oss_bucket.state[0].bucket
  status = "Enabled"
}

# The read path (enable_read): a RAM role of its own for the read function,
# with a policy that only reads. Nothing here exists when enable_read is
# false. What ARMS documents for reading:
#   - V1 instances: remote read with an AccessKey needs ARMS read permission
#     (the AliyunARMSReadOnlyAccess system policy); its arms read-only action
#     families are var.arms_read_actions, scoped here to the one instance.
#   - V2 instances: the HTTP API needs the AliyunPrometheusMetricReadAccess
#     system policy: cms Get/List of Prometheus instances, views and metrics,
#     and log:QueryMetrics, log:QueryPrometheusMetrics, log:GetLogStoreLogs.
#     The log actions are scoped, as AliyunARMSReadOnlyAccess scopes them, to
#     the Prometheus logstores (aliyun-prom-*) and storeviews (aliyun_prom_*),
#     here in this region and account only; the cms ones are Get/List only.
resource "alicloud_ram_role" "read" {
  count       = var.enable_read ? 1 : 0
  name        = "${var.name}-fc-read"
  description = "promrelay read function: query Managed Service for Prometheus (read only)"
  document = jsonencode({
    Version = "1"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = ["fc.aliyuncs.com"] }
    }]
  })
  force = true
}

locals {
  read_statements = [{
    Effect   = "Allow"
    Action   = var.arms_read_actions
    Resource = [local.arms_resource]
    }, {
    Effect = "Allow"
    Action = ["log:QueryMetrics", "log:QueryPrometheusMetrics", "log:GetLogStoreLogs"]
    Resource = [
      "acs:log:${var.region}:${data.alicloud_account.current.id}:project/*/logstore/aliyun-prom-*",
      "acs:log:${var.region}:${data.alicloud_account.current.id}:project/*/storeview/aliyun_prom_*",
    ]
    }, {
    Effect   = "Allow"
    Action   = ["cms:GetPrometheusInstance", "cms:ListPrometheusInstances", "cms:GetPrometheusView", "cms:ListPrometheusViews", "cms:ListPrometheusMetrics"]
    Resource = ["*"]
  }]
}

resource "alicloud_ram_policy" "read" {
  count           = var.enable_read ? 1 : 0
  policy_name     = "${var.name}-read"
  description     = "promrelay: read from Managed Service for Prometheus"
  policy_document = jsonencode({ Version = "1", Statement = local.read_statements })
  force           = true
}

resource "alicloud_ram_role_policy_attachment" "read" {
  count       = var.enable_read ? 1 : 0
  role_name   = alicloud_ram_role.read[0].name
  policy_name = alicloud_ram_policy.read[0].policy_name
  policy_type = "Custom"
}

# s.custom-runtime.yaml serves writes and reads from one function with the
# write role: with read_policy_on_relay_role that role gets the read policy
# too (only when enable_read).
resource "alicloud_ram_role_policy_attachment" "relay_read" {
  count       = var.enable_read && var.read_policy_on_relay_role ? 1 : 0
  role_name   = alicloud_ram_role.relay.name
  policy_name = alicloud_ram_policy.read[0].policy_name
  policy_type = "Custom"
}
