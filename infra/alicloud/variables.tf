variable "region" {
  description = "Alibaba Cloud region of the ARMS Prometheus instance and the function."
  type        = string
  default     = "cn-hangzhou"
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "promrelay"
}

variable "arms_instance_id" {
  description = "ID of the Managed Service for Prometheus instance (cluster id) the function writes to. Required: the role is scoped to this one instance."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.arms_instance_id))
    error_message = "arms_instance_id must be one instance's cluster id (no wildcard)."
  }
}

variable "state_noncurrent_days" {
  description = "Days the group store bucket keeps an overwritten or deleted group's old versions (every push writes one)."
  type        = number
  default     = 7
}

variable "arms_actions" {
  description = "ARMS actions granted to the function's role. ARMS documents no action narrower than its API actions for remote write; the policy is scoped to the instance resource."
  type        = list(string)
  default     = ["arms:*"]
}

variable "create_state_bucket" {
  description = "Create an OSS bucket for promrelay's group store (PROMRELAY_STATE_URL=oss://<bucket>/groups)."
  type        = bool
  default     = false
}

variable "enable_read" {
  description = "Create the read function's RAM role and its read-only policy (the read path: Prometheus HTTP API and remote read through promrelay); false grants nothing beyond the write role."
  type        = bool
  default     = false
}

variable "arms_read_actions" {
  description = "ARMS actions granted to the read function's role on the instance. ARMS documents no query-only action for the HTTP API or remote read; these are the read-only action families of the AliyunARMSReadOnlyAccess system policy (no Create/Update/Delete), scoped here to the one instance."
  type        = list(string)
  default     = ["arms:Describe*", "arms:List*", "arms:Get*", "arms:Search*", "arms:Check*", "arms:Query*"]
}

variable "read_policy_on_relay_role" {
  description = "With enable_read, also attach the read policy to the write function's role: for s.custom-runtime.yaml, whose one function serves writes and reads."
  type        = bool
  default     = false
}
