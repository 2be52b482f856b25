export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];

export type Database = {
  "public": {
    Tables: {
      "allocations": {
        Row: {
          "amount": number;
          "created_at": string;
          "id": number;
          "kind": string;
          "lot": number;
          "mapping_created_at": string | null;
          "mapping_id": number | null;
          "price": number;
          "price_id": number;
          "shares": number;
          "ticker": string;
          "transaction_id": number;
          "txn_date": string;
          "user_id": string;
        };
        ComputedFields: never;
        Insert: {
          "amount": number;
          "created_at"?: string;
          "id"?: number;
          "kind"?: string;
          "lot"?: number;
          "mapping_created_at"?: string | null;
          "mapping_id"?: number | null;
          "price": number;
          "price_id": number;
          "shares": number;
          "ticker": string;
          "transaction_id": number;
          "txn_date": string;
          "user_id": string;
        };
        Update: {
          "amount"?: number;
          "created_at"?: string;
          "id"?: number;
          "kind"?: string;
          "lot"?: number;
          "mapping_created_at"?: string | null;
          "mapping_id"?: number | null;
          "price"?: number;
          "price_id"?: number;
          "shares"?: number;
          "ticker"?: string;
          "transaction_id"?: number;
          "txn_date"?: string;
          "user_id"?: string;
        };
        Relationships: [
          {
            foreignKeyName: "allocations_price_id_fkey";
            columns: ["price_id"];
            isOneToOne: false;
            referencedRelation: "prices";
            referencedColumns: ["id"];
          },
        ];
      };
      "broker_orders": {
        Row: {
          "broker_order_id": string | null;
          "client_order_id": string;
          "created_at": string;
          "filled_amount": number;
          "filled_at": string | null;
          "filled_avg_price": number | null;
          "filled_qty": number;
          "id": number;
          "notional": number;
          "reject_reason": string | null;
          "status": string;
          "submitted_at": string | null;
          "sweep_id": number;
          "ticker": string;
          "updated_at": string;
        };
        ComputedFields: never;
        Insert: {
          "broker_order_id"?: string | null;
          "client_order_id": string;
          "created_at"?: string;
          "filled_amount"?: number;
          "filled_at"?: string | null;
          "filled_avg_price"?: number | null;
          "filled_qty"?: number;
          "id"?: never;
          "notional": number;
          "reject_reason"?: string | null;
          "status"?: string;
          "submitted_at"?: string | null;
          "sweep_id": number;
          "ticker": string;
          "updated_at"?: string;
        };
        Update: {
          "broker_order_id"?: string | null;
          "client_order_id"?: string;
          "created_at"?: string;
          "filled_amount"?: number;
          "filled_at"?: string | null;
          "filled_avg_price"?: number | null;
          "filled_qty"?: number;
          "id"?: never;
          "notional"?: number;
          "reject_reason"?: string | null;
          "status"?: string;
          "submitted_at"?: string | null;
          "sweep_id"?: number;
          "ticker"?: string;
          "updated_at"?: string;
        };
        Relationships: [];
      };
      "export_jobs": {
        Row: {
          "after_key": Json | null;
          "attempts": number;
          "bytes_written": number;
          "cancel_requested": boolean;
          "created_at": string;
          "download_url": string | null;
          "error": string | null;
          "file_name": string | null;
          "file_sha256": string | null;
          "filters": NonNullable<Json>;
          "finished_at": string | null;
          "id": number;
          "list": string;
          "queue_job_id": number | null;
          "requested_by": string | null;
          "rows_written": number;
          "sort": string | null;
          "started_at": string | null;
          "state": string;
          "storage_bucket": string | null;
          "storage_path": string | null;
          "updated_at": string;
        };
        ComputedFields: never;
        Insert: {
          "after_key"?: Json | null;
          "attempts"?: number;
          "bytes_written"?: number;
          "cancel_requested"?: boolean;
          "created_at"?: string;
          "download_url"?: string | null;
          "error"?: string | null;
          "file_name"?: string | null;
          "file_sha256"?: string | null;
          "filters"?: NonNullable<Json>;
          "finished_at"?: string | null;
          "id"?: never;
          "list": string;
          "queue_job_id"?: number | null;
          "requested_by"?: string | null;
          "rows_written"?: number;
          "sort"?: string | null;
          "started_at"?: string | null;
          "state"?: string;
          "storage_bucket"?: string | null;
          "storage_path"?: string | null;
          "updated_at"?: string;
        };
        Update: {
          "after_key"?: Json | null;
          "attempts"?: number;
          "bytes_written"?: number;
          "cancel_requested"?: boolean;
          "created_at"?: string;
          "download_url"?: string | null;
          "error"?: string | null;
          "file_name"?: string | null;
          "file_sha256"?: string | null;
          "filters"?: NonNullable<Json>;
          "finished_at"?: string | null;
          "id"?: never;
          "list"?: string;
          "queue_job_id"?: number | null;
          "requested_by"?: string | null;
          "rows_written"?: number;
          "sort"?: string | null;
          "started_at"?: string | null;
          "state"?: string;
          "storage_bucket"?: string | null;
          "storage_path"?: string | null;
          "updated_at"?: string;
        };
        Relationships: [];
      };
      "fill_allocations": {
        Row: {
          "amount": number;
          "broker_order_id": number;
          "created_at": string;
          "event_id": string;
          "execution_id": string;
          "id": number;
          "kind": string;
          "price": number;
          "shares": number;
          "ticker": string;
          "user_id": string | null;
        };
        ComputedFields: never;
        Insert: {
          "amount": number;
          "broker_order_id": number;
          "created_at"?: string;
          "event_id": string;
          "execution_id": string;
          "id"?: never;
          "kind": string;
          "price": number;
          "shares": number;
          "ticker": string;
          "user_id"?: string | null;
        };
        Update: {
          "amount"?: number;
          "broker_order_id"?: number;
          "created_at"?: string;
          "event_id"?: string;
          "execution_id"?: string;
          "id"?: never;
          "kind"?: string;
          "price"?: number;
          "shares"?: number;
          "ticker"?: string;
          "user_id"?: string | null;
        };
        Relationships: [
          {
            foreignKeyName: "fill_allocations_broker_order_id_fkey";
            columns: ["broker_order_id"];
            isOneToOne: false;
            referencedRelation: "broker_orders";
            referencedColumns: ["id"];
          },
        ];
      };
      "holdings": {
        Row: {
          "invested": number;
          "lots": number;
          "shares": number;
          "ticker": string;
          "updated_at": string;
          "user_id": string;
        };
        ComputedFields: never;
        Insert: {
          "invested": number;
          "lots": number;
          "shares": number;
          "ticker": string;
          "updated_at"?: string;
          "user_id": string;
        };
        Update: {
          "invested"?: number;
          "lots"?: number;
          "shares"?: number;
          "ticker"?: string;
          "updated_at"?: string;
          "user_id"?: string;
        };
        Relationships: [];
      };
      "import_jobs": {
        Row: {
          "attempts": number;
          "cancel_requested": boolean;
          "checkpoint_line": number;
          "checkpoint_offset": number;
          "columns": Json | null;
          "created_at": string;
          "created_by": string | null;
          "error": string | null;
          "eta_seconds": number | null;
          "file_path": string;
          "file_sha256": string;
          "file_size": number;
          "finished_at": string | null;
          "force": boolean;
          "id": number;
          "inserted_rows": number;
          "kind": string;
          "processed_rows": number;
          "queue_job_id": number | null;
          "rejected_rows": number;
          "rows_per_second": number | null;
          "started_at": string | null;
          "state": string;
          "storage_bucket": string | null;
          "storage_etag": string | null;
          "total_rows": number | null;
          "total_rows_exact": boolean;
          "updated_at": string;
          "updated_rows": number;
        };
        ComputedFields: never;
        Insert: {
          "attempts"?: number;
          "cancel_requested"?: boolean;
          "checkpoint_line"?: number;
          "checkpoint_offset"?: number;
          "columns"?: Json | null;
          "created_at"?: string;
          "created_by"?: string | null;
          "error"?: string | null;
          "eta_seconds"?: number | null;
          "file_path": string;
          "file_sha256": string;
          "file_size": number;
          "finished_at"?: string | null;
          "force"?: boolean;
          "id"?: never;
          "inserted_rows"?: number;
          "kind": string;
          "processed_rows"?: number;
          "queue_job_id"?: number | null;
          "rejected_rows"?: number;
          "rows_per_second"?: number | null;
          "started_at"?: string | null;
          "state"?: string;
          "storage_bucket"?: string | null;
          "storage_etag"?: string | null;
          "total_rows"?: number | null;
          "total_rows_exact"?: boolean;
          "updated_at"?: string;
          "updated_rows"?: number;
        };
        Update: {
          "attempts"?: number;
          "cancel_requested"?: boolean;
          "checkpoint_line"?: number;
          "checkpoint_offset"?: number;
          "columns"?: Json | null;
          "created_at"?: string;
          "created_by"?: string | null;
          "error"?: string | null;
          "eta_seconds"?: number | null;
          "file_path"?: string;
          "file_sha256"?: string;
          "file_size"?: number;
          "finished_at"?: string | null;
          "force"?: boolean;
          "id"?: never;
          "inserted_rows"?: number;
          "kind"?: string;
          "processed_rows"?: number;
          "queue_job_id"?: number | null;
          "rejected_rows"?: number;
          "rows_per_second"?: number | null;
          "started_at"?: string | null;
          "state"?: string;
          "storage_bucket"?: string | null;
          "storage_etag"?: string | null;
          "total_rows"?: number | null;
          "total_rows_exact"?: boolean;
          "updated_at"?: string;
          "updated_rows"?: number;
        };
        Relationships: [];
      };
      "import_rejections": {
        Row: {
          "column_name": string | null;
          "created_at": string;
          "id": number;
          "import_job_id": number;
          "line_number": number;
          "raw_line": string | null;
          "reason": string;
        };
        ComputedFields: never;
        Insert: {
          "column_name"?: string | null;
          "created_at"?: string;
          "id"?: never;
          "import_job_id": number;
          "line_number": number;
          "raw_line"?: string | null;
          "reason": string;
        };
        Update: {
          "column_name"?: string | null;
          "created_at"?: string;
          "id"?: never;
          "import_job_id"?: number;
          "line_number"?: number;
          "raw_line"?: string | null;
          "reason"?: string;
        };
        Relationships: [
          {
            foreignKeyName: "import_rejections_import_job_id_fkey";
            columns: ["import_job_id"];
            isOneToOne: false;
            referencedRelation: "import_jobs";
            referencedColumns: ["id"];
          },
        ];
      };
      "investing_settings": {
        Row: {
          "created_at": string;
          "multiplier": number;
          "paused": boolean;
          "threshold_dollars": number;
          "updated_at": string;
          "user_id": string;
        };
        ComputedFields: never;
        Insert: {
          "created_at"?: string;
          "multiplier"?: number;
          "paused"?: boolean;
          "threshold_dollars"?: number;
          "updated_at"?: string;
          "user_id": string;
        };
        Update: {
          "created_at"?: string;
          "multiplier"?: number;
          "paused"?: boolean;
          "threshold_dollars"?: number;
          "updated_at"?: string;
          "user_id"?: string;
        };
        Relationships: [];
      };
      "llm_calls": {
        Row: {
          "attempt": number;
          "completion_tokens": number;
          "cost_usd": number;
          "created_at": string;
          "error": string | null;
          "id": number;
          "job_id": number | null;
          "latency_ms": number;
          "merchants": number;
          "model": string;
          "outcome": string;
          "prompt_tokens": number;
          "prompt_version": string;
          "provider": string;
        };
        ComputedFields: never;
        Insert: {
          "attempt"?: number;
          "completion_tokens"?: number;
          "cost_usd"?: number;
          "created_at"?: string;
          "error"?: string | null;
          "id"?: never;
          "job_id"?: number | null;
          "latency_ms": number;
          "merchants": number;
          "model": string;
          "outcome": string;
          "prompt_tokens"?: number;
          "prompt_version": string;
          "provider": string;
        };
        Update: {
          "attempt"?: number;
          "completion_tokens"?: number;
          "cost_usd"?: number;
          "created_at"?: string;
          "error"?: string | null;
          "id"?: never;
          "job_id"?: number | null;
          "latency_ms"?: number;
          "merchants"?: number;
          "model"?: string;
          "outcome"?: string;
          "prompt_tokens"?: number;
          "prompt_version"?: string;
          "provider"?: string;
        };
        Relationships: [];
      };
      "llm_mappings": {
        Row: {
          "admin_approved": boolean;
          "category": string | null;
          "company_name": string | null;
          "confidence": number | null;
          "created_at": string;
          "id": number;
          "import_job_id": number | null;
          "merchant_key": string;
          "merchant_name": string;
          "model": string | null;
          "next_attempt_at": string | null;
          "note": string | null;
          "prompt_version": string | null;
          "provider_attempts": number;
          "provider_error": string | null;
          "provider_state": string | null;
          "reason": string | null;
          "reviewed_at": string | null;
          "reviewer": string | null;
          "source": string;
          "status": string;
          "submitted_by": string | null;
          "ticker": string | null;
          "tier": string | null;
          "updated_at": string;
        };
        ComputedFields: never;
        Insert: {
          "admin_approved"?: boolean;
          "category"?: string | null;
          "company_name"?: string | null;
          "confidence"?: number | null;
          "created_at"?: string;
          "id"?: number;
          "import_job_id"?: number | null;
          "merchant_key": string;
          "merchant_name": string;
          "model"?: string | null;
          "next_attempt_at"?: string | null;
          "note"?: string | null;
          "prompt_version"?: string | null;
          "provider_attempts"?: number;
          "provider_error"?: string | null;
          "provider_state"?: string | null;
          "reason"?: string | null;
          "reviewed_at"?: string | null;
          "reviewer"?: string | null;
          "source"?: string;
          "status"?: string;
          "submitted_by"?: string | null;
          "ticker"?: string | null;
          "tier"?: string | null;
          "updated_at"?: string;
        };
        Update: {
          "admin_approved"?: boolean;
          "category"?: string | null;
          "company_name"?: string | null;
          "confidence"?: number | null;
          "created_at"?: string;
          "id"?: number;
          "import_job_id"?: number | null;
          "merchant_key"?: string;
          "merchant_name"?: string;
          "model"?: string | null;
          "next_attempt_at"?: string | null;
          "note"?: string | null;
          "prompt_version"?: string | null;
          "provider_attempts"?: number;
          "provider_error"?: string | null;
          "provider_state"?: string | null;
          "reason"?: string | null;
          "reviewed_at"?: string | null;
          "reviewer"?: string | null;
          "source"?: string;
          "status"?: string;
          "submitted_by"?: string | null;
          "ticker"?: string | null;
          "tier"?: string | null;
          "updated_at"?: string;
        };
        Relationships: [];
      };
      "merchant_catalog": {
        Row: {
          "aliases": (string)[];
          "canonical_name": string;
          "category": string;
          "merchant_key": string;
          "ticker": string | null;
          "updated_at": string;
        };
        ComputedFields: never;
        Insert: {
          "aliases"?: (string)[];
          "canonical_name": string;
          "category": string;
          "merchant_key": string;
          "ticker"?: string | null;
          "updated_at"?: string;
        };
        Update: {
          "aliases"?: (string)[];
          "canonical_name"?: string;
          "category"?: string;
          "merchant_key"?: string;
          "ticker"?: string | null;
          "updated_at"?: string;
        };
        Relationships: [];
      };
      "merchants": {
        Row: {
          "created_at": string;
          "display_name": string;
          "id": number;
          "mapping_created_at": string | null;
          "mapping_id": number | null;
          "merchant_key": string;
          "updated_at": string;
        };
        ComputedFields: never;
        Insert: {
          "created_at"?: string;
          "display_name": string;
          "id"?: number;
          "mapping_created_at"?: string | null;
          "mapping_id"?: number | null;
          "merchant_key": string;
          "updated_at"?: string;
        };
        Update: {
          "created_at"?: string;
          "display_name"?: string;
          "id"?: number;
          "mapping_created_at"?: string | null;
          "mapping_id"?: number | null;
          "merchant_key"?: string;
          "updated_at"?: string;
        };
        Relationships: [
          {
            foreignKeyName: "merchants_mapping_fk";
            columns: ["mapping_id", "mapping_created_at"];
            isOneToOne: false;
            referencedRelation: "llm_mappings";
            referencedColumns: ["id", "created_at"];
          },
        ];
      };
      "prices": {
        Row: {
          "as_of": string;
          "fetched_at": string;
          "id": number;
          "price": number;
          "source": string;
          "ticker": string;
        };
        ComputedFields: never;
        Insert: {
          "as_of": string;
          "fetched_at"?: string;
          "id"?: never;
          "price": number;
          "source": string;
          "ticker": string;
        };
        Update: {
          "as_of"?: string;
          "fetched_at"?: string;
          "id"?: never;
          "price"?: number;
          "source"?: string;
          "ticker"?: string;
        };
        Relationships: [];
      };
      "profiles": {
        Row: {
          "created_at": string;
          "display_name": string | null;
          "email": string | null;
          "id": string;
          "role": string;
          "updated_at": string;
        };
        ComputedFields: never;
        Insert: {
          "created_at"?: string;
          "display_name"?: string | null;
          "email"?: string | null;
          "id": string;
          "role"?: string;
          "updated_at"?: string;
        };
        Update: {
          "created_at"?: string;
          "display_name"?: string | null;
          "email"?: string | null;
          "id"?: string;
          "role"?: string;
          "updated_at"?: string;
        };
        Relationships: [];
      };
      "transactions": {
        Row: {
          "allocation_lot": number;
          "amount": number;
          "created_at": string;
          "descriptor": string;
          "id": number;
          "import_job_id": number | null;
          "import_line": number | null;
          "mapping_id": number | null;
          "merchant_key": string | null;
          "round_up": number;
          "status": string;
          "sweep_id": number | null;
          "txn_date": string;
          "updated_at": string;
          "user_id": string;
        };
        ComputedFields: never;
        Insert: {
          "allocation_lot"?: number;
          "amount": number;
          "created_at"?: string;
          "descriptor": string;
          "id"?: number;
          "import_job_id"?: number | null;
          "import_line"?: number | null;
          "mapping_id"?: number | null;
          "merchant_key"?: string | null;
          "round_up"?: number;
          "status"?: string;
          "sweep_id"?: number | null;
          "txn_date": string;
          "updated_at"?: string;
          "user_id": string;
        };
        Update: {
          "allocation_lot"?: number;
          "amount"?: number;
          "created_at"?: string;
          "descriptor"?: string;
          "id"?: number;
          "import_job_id"?: number | null;
          "import_line"?: number | null;
          "mapping_id"?: number | null;
          "merchant_key"?: string | null;
          "round_up"?: number;
          "status"?: string;
          "sweep_id"?: number | null;
          "txn_date"?: string;
          "updated_at"?: string;
          "user_id"?: string;
        };
        Relationships: [];
      };
    };
    Views: {
      [_ in never]: never;
    };
    Functions: {
      "admin_correct_transaction": {
        Args: {
          "p_amount"?: number;
          "p_id": number;
          "p_merchant_key"?: string;
          "p_new_txn_date"?: string;
          "p_txn_date": string;
        };
        Returns: {
          "allocation_lot": number;
          "amount": number;
          "created_at": string;
          "descriptor": string;
          "id": number;
          "import_job_id": number | null;
          "import_line": number | null;
          "mapping_id": number | null;
          "merchant_key": string | null;
          "round_up": number;
          "status": string;
          "sweep_id": number | null;
          "txn_date": string;
          "updated_at": string;
          "user_id": string;
        };
        SetofOptions: {
          from: "*";
          to: "transactions";
          isOneToOne: true;
          isSetofReturn: false;
        };
      };
      "admin_list_mappings": {
        Args: {
          "p_admin_approved"?: boolean;
          "p_after_confidence"?: number;
          "p_after_created_at"?: string;
          "p_after_id"?: number;
          "p_category"?: string;
          "p_confidence_max"?: number;
          "p_confidence_min"?: number;
          "p_created_from"?: string;
          "p_created_to"?: string;
          "p_limit"?: number;
          "p_merchant_key_prefix"?: string;
          "p_search"?: string;
          "p_sort"?: string;
          "p_source"?: string;
          "p_status"?: string;
          "p_tier"?: string;
        };
        Returns: {
          "admin_approved": boolean;
          "category": string | null;
          "company_name": string | null;
          "confidence": number | null;
          "created_at": string;
          "id": number;
          "import_job_id": number | null;
          "merchant_key": string;
          "merchant_name": string;
          "model": string | null;
          "next_attempt_at": string | null;
          "note": string | null;
          "prompt_version": string | null;
          "provider_attempts": number;
          "provider_error": string | null;
          "provider_state": string | null;
          "reason": string | null;
          "reviewed_at": string | null;
          "reviewer": string | null;
          "source": string;
          "status": string;
          "submitted_by": string | null;
          "ticker": string | null;
          "tier": string | null;
          "updated_at": string;
        }[];
        SetofOptions: {
          from: "*";
          to: "llm_mappings";
          isOneToOne: false;
          isSetofReturn: true;
        };
      };
      "admin_list_transactions": {
        Args: {
          "p_amount_max"?: number;
          "p_amount_min"?: number;
          "p_before_date"?: string;
          "p_before_id"?: number;
          "p_date_from"?: string;
          "p_date_to"?: string;
          "p_import_job_id"?: number;
          "p_limit"?: number;
          "p_mapping_id"?: number;
          "p_merchant_key"?: string;
          "p_status"?: string;
          "p_user_id"?: string;
        };
        Returns: {
          "allocation_lot": number;
          "allocations": Json;
          "amount": number;
          "created_at": string;
          "descriptor": string;
          "id": number;
          "import_job_id": number;
          "import_line": number;
          "mapping_id": number;
          "merchant_key": string;
          "merchant_name": string;
          "round_up": number;
          "status": string;
          "ticker": string;
          "txn_date": string;
          "updated_at": string;
          "user_id": string;
        }[];
      };
      "admin_list_users": {
        Args: {
          "p_after_created_at"?: string;
          "p_after_email"?: string;
          "p_after_id"?: string;
          "p_email_prefix"?: string;
          "p_limit"?: number;
          "p_role"?: string;
        };
        Returns: {
          "created_at": string;
          "display_name": string;
          "email": string;
          "id": string;
          "invested": number;
          "role": string;
          "round_ups": number;
          "transactions": number;
          "updated_at": string;
        }[];
      };
      "custom_access_token_hook": { Args: { "event": Json }; Returns: Json };
      "dashboard_stats": { Args: Record<PropertyKey, never>; Returns: Json };
      "investing_backlog": {
        Args: { "p_fallback_ticker"?: string };
        Returns: {
          "reason": string;
          "round_up": number;
          "transactions": number;
        }[];
      };
      "investing_overview": { Args: Record<PropertyKey, never>; Returns: Json };
      "list_my_allocations": {
        Args: { "p_before_created_at"?: string; "p_before_id"?: number; "p_limit"?: number };
        Returns: {
          "amount": number;
          "created_at": string;
          "id": number;
          "kind": string;
          "lot": number;
          "mapping_created_at": string | null;
          "mapping_id": number | null;
          "price": number;
          "price_id": number;
          "shares": number;
          "ticker": string;
          "transaction_id": number;
          "txn_date": string;
          "user_id": string;
        }[];
        SetofOptions: {
          from: "*";
          to: "allocations";
          isOneToOne: false;
          isSetofReturn: true;
        };
      };
      "list_my_holdings": {
        Args: Record<PropertyKey, never>;
        Returns: {
          "invested": number;
          "lots": number;
          "shares": number;
          "ticker": string;
          "updated_at": string;
          "user_id": string;
        }[];
        SetofOptions: {
          from: "*";
          to: "holdings";
          isOneToOne: false;
          isSetofReturn: true;
        };
      };
      "list_my_transactions": {
        Args: { "p_before_date"?: string; "p_before_id"?: number; "p_limit"?: number };
        Returns: {
          "allocation_lot": number;
          "amount": number;
          "created_at": string;
          "descriptor": string;
          "id": number;
          "import_job_id": number | null;
          "import_line": number | null;
          "mapping_id": number | null;
          "merchant_key": string | null;
          "round_up": number;
          "status": string;
          "sweep_id": number | null;
          "txn_date": string;
          "updated_at": string;
          "user_id": string;
        }[];
        SetofOptions: {
          from: "*";
          to: "transactions";
          isOneToOne: false;
          isSetofReturn: true;
        };
      };
      "list_pending_mappings": {
        Args: { "p_after_created_at"?: string; "p_after_id"?: number; "p_limit"?: number };
        Returns: {
          "admin_approved": boolean;
          "category": string | null;
          "company_name": string | null;
          "confidence": number | null;
          "created_at": string;
          "id": number;
          "import_job_id": number | null;
          "merchant_key": string;
          "merchant_name": string;
          "model": string | null;
          "next_attempt_at": string | null;
          "note": string | null;
          "prompt_version": string | null;
          "provider_attempts": number;
          "provider_error": string | null;
          "provider_state": string | null;
          "reason": string | null;
          "reviewed_at": string | null;
          "reviewer": string | null;
          "source": string;
          "status": string;
          "submitted_by": string | null;
          "ticker": string | null;
          "tier": string | null;
          "updated_at": string;
        }[];
        SetofOptions: {
          from: "*";
          to: "llm_mappings";
          isOneToOne: false;
          isSetofReturn: true;
        };
      };
      "list_users": {
        Args: { "p_after_created_at"?: string; "p_after_id"?: string; "p_limit"?: number };
        Returns: {
          "created_at": string;
          "display_name": string | null;
          "email": string | null;
          "id": string;
          "role": string;
          "updated_at": string;
        }[];
        SetofOptions: {
          from: "*";
          to: "profiles";
          isOneToOne: false;
          isSetofReturn: true;
        };
      };
      "review_mapping": {
        Args: { "p_created_at": string; "p_decision": string; "p_id": number };
        Returns: {
          "admin_approved": boolean;
          "category": string | null;
          "company_name": string | null;
          "confidence": number | null;
          "created_at": string;
          "id": number;
          "import_job_id": number | null;
          "merchant_key": string;
          "merchant_name": string;
          "model": string | null;
          "next_attempt_at": string | null;
          "note": string | null;
          "prompt_version": string | null;
          "provider_attempts": number;
          "provider_error": string | null;
          "provider_state": string | null;
          "reason": string | null;
          "reviewed_at": string | null;
          "reviewer": string | null;
          "source": string;
          "status": string;
          "submitted_by": string | null;
          "ticker": string | null;
          "tier": string | null;
          "updated_at": string;
        };
        SetofOptions: {
          from: "*";
          to: "llm_mappings";
          isOneToOne: true;
          isSetofReturn: false;
        };
      };
      "search_mappings": {
        Args: { "p_after_id"?: number; "p_limit"?: number; "p_query": string };
        Returns: {
          "admin_approved": boolean;
          "category": string | null;
          "company_name": string | null;
          "confidence": number | null;
          "created_at": string;
          "id": number;
          "import_job_id": number | null;
          "merchant_key": string;
          "merchant_name": string;
          "model": string | null;
          "next_attempt_at": string | null;
          "note": string | null;
          "prompt_version": string | null;
          "provider_attempts": number;
          "provider_error": string | null;
          "provider_state": string | null;
          "reason": string | null;
          "reviewed_at": string | null;
          "reviewer": string | null;
          "source": string;
          "status": string;
          "submitted_by": string | null;
          "ticker": string | null;
          "tier": string | null;
          "updated_at": string;
        }[];
        SetofOptions: {
          from: "*";
          to: "llm_mappings";
          isOneToOne: false;
          isSetofReturn: true;
        };
      };
    };
    Enums: {
      [_ in never]: never;
    };
    CompositeTypes: {
      [_ in never]: never;
    };
  };
};

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">;

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">];

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof (
      & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
      & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"]
    )
    : never = never,
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals } ? (
    & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    & DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"]
  )[TableName] extends {
    Row: infer R;
  } ? R
  : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
      Row: infer R;
    } ? R
    : never
  : never;

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never,
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends
    {
      Insert: infer I;
    } ? I
  : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Insert: infer I;
    } ? I
    : never
  : never;

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never,
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends
    {
      Update: infer U;
    } ? U
  : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Update: infer U;
    } ? U
    : never
  : never;

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never,
> = DefaultSchemaEnumNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
  : never;

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals;
  } ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never,
> = PublicCompositeTypeNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][
    CompositeTypeName
  ]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
  : never;

export const Constants = {
  "public": {
    Enums: {},
  },
} as const;
