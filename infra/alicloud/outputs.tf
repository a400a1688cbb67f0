output "role_arn" {
  description = "PROMRELAY_FC_ROLE_ARN for s.yaml (the function's role)."
  value       = alicloud_ram_role.relay.arn
}

output "state_url" {
  description = "PROMRELAY_STATE_URL for the group store, when the bucket is created."
  value       = var.create_state_bucket ? "oss://${alicloud_oss_bucket.state[0].bucket}/groups" : ""
}

output "s_deploy_command" {
  description = "The s deploy command with this infrastructure's values (set PROMRELAY_UPSTREAM_URL to the instance's remote-write URL and, with enable_read, PROMRELAY_QUERY_URL to its HTTP API URL)."
  value       = "PROMRELAY_FC_ROLE_ARN=${alicloud_ram_role.relay.arn}${var.enable_read ? " PROMRELAY_FC_READ_ROLE_ARN=${alicloud_ram_role.read[0].arn}" : ""} s deploy -y"
}

output "read_role_arn" {
  description = "PROMRELAY_FC_READ_ROLE_ARN for s.yaml (the read function's role), when enable_read; null otherwise."
  value       = var.enable_read ? alicloud_ram_role.read[0].arn : null
}
