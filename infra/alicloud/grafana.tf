# Optional: the relay's Grafana dashboard (infra/grafana/promrelay.json,
# README "Observing the relay") on a Grafana of your own — Amazon Managed
# Grafana, Alibaba Cloud's ARMS Grafana, Grafana Cloud or any Grafana 10+.
# Nothing is created, and no Grafana is contacted, unless grafana_url is set.

variable "grafana_url" {
  description = "Base URL of a Grafana to deploy the promrelay dashboard to (e.g. https://g-abc.grafana-workspace.eu-west-1.amazonaws.com); empty: no dashboard"
  type        = string
  default     = ""
}

variable "grafana_auth" {
  description = "Grafana service account token (or user:password) with permission to create dashboards"
  type        = string
  default     = ""
  sensitive   = true
}

variable "grafana_folder_uid" {
  description = "UID of the Grafana folder for the dashboard; empty: the General folder"
  type        = string
  default     = ""
}

provider "grafana" {
  # A placeholder keeps the provider configurable when no Grafana is set:
  # with grafana_url empty no resource uses it.
  url  = var.grafana_url != "" ? var.grafana_url : "http://127.0.0.1:3000"
  auth = var.grafana_auth
}

resource "grafana_dashboard" "promrelay" {
  count       = var.grafana_url != "" ? 1 : 0
  config_json = file("${path.module}/../grafana/promrelay.json")
  folder      = var.grafana_folder_uid != "" ? var.grafana_folder_uid : null
  overwrite   = true
}
