terraform {
  required_version = ">= 1.5"
  required_providers {
    grafana = {
      source  = "grafana/grafana"
      version = ">= 3.0"
    }
    alicloud = {
      source  = "aliyun/alicloud"
      version = ">= 1.220.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}

provider "alicloud" {
  region = var.region
}
