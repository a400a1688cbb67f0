output "role_arn" {
  description = "PROMRELAY_FC_ROLE_ARN for s.yaml (the function's role)."
  value       = alicloud_ram_role.relay.arn
}

output "state_url" {
  description = "PROMRELAY_STATE_URL for the group store, when the bucket is created."
  value       = var.create_state_bucket ? "oss://${alicloud_oss_bucket.state[0].bucket}/groups" : ""
}

output "s_deploy_command" {
  description = "The s deploy command with this infrastructure's values (set PROMRELAY_UPSTREAM_URL to the instance's remote-write URL)."
  value       = "PROMRELAY_FC_ROLE_ARN=${alicloud_ram_role.relay.arn} s deploy -y"
}
