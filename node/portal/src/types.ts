// Shapes of the admin API's answers (node/src/api/admin/*.rs and the portal endpoints).

export interface AdminUser {
  id: string;
  email: string;
  totp_enabled: boolean;
  disabled: boolean;
  created_at: string;
}

export interface LoginAnswer {
  csrf_token: string;
  user: AdminUser;
}

export interface MeAnswer extends LoginAnswer {
  session?: { created_at: string; expires_at: string; idle_expires_at?: string };
}

export interface Org {
  id: string;
  slug: string;
  name: string;
  created_at: string;
}

export interface Limit {
  burst: number;
  per_minute: number;
}

export type RateLimitName =
  | 'login_per_account_ip'
  | 'login_per_account'
  | 'login_per_ip'
  | 'signup_per_ip'
  | 'public_per_ip'
  | 'per_client'
  | 'per_secret_key';

export interface ProjectSettings {
  access_ttl_s: number;
  refresh_ttl_s: number;
  refresh_reuse_grace_s: number;
  session_max_ttl_s: number;
  max_sessions_per_user: number;
  rate_limits: Record<RateLimitName, Limit>;
}

export interface Project {
  id: string;
  org_slug: string;
  slug: string;
  name: string;
  settings: ProjectSettings;
  maintenance: boolean;
  created_at: string;
}

export interface Client {
  client_id: string;
  name: string;
  key_prefix: string;
  allowed_origins: string[];
  scopes: string[];
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface ClientCreated {
  client_id: string;
  client_key: string;
  name: string;
  allowed_origins: string[];
  scopes: string[];
  created_at: string;
}

export interface ApiKey {
  id: string;
  name: string;
  key_prefix: string;
  allowed_cidrs: string[];
  allowed_origins: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface ApiKeyCreated {
  id: string;
  key: string;
  name: string;
  key_prefix: string;
  allowed_cidrs: string[];
  allowed_origins: string[];
  created_at: string;
  expires_at: string | null;
}

export interface AdminToken {
  id: string;
  name: string;
  token_prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export interface AdminTokenCreated {
  id: string;
  name: string;
  token: string;
  created_at: string;
}

export interface EndUser {
  id: string;
  external_id: string;
  disabled: boolean;
  created_at: string;
}

export interface EndUserSession {
  id: string;
  device_id: string;
  user_agent: string | null;
  ip: string | null;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  refresh_expires_at: string;
  revoked: boolean;
}

export interface Column {
  name: string;
  type: string;
  nullable: boolean;
  default?: unknown;
}

export interface IndexSpec {
  name: string;
  column: string;
  unique: boolean;
  building?: boolean;
}

export interface SqlTable {
  id: string;
  name: string;
  columns: Column[];
  primary_key: string;
  indexes: IndexSpec[];
  buckets: number;
  version: number;
  created_at: string;
}

export interface SqlWarning {
  code: string;
  message: string;
}

export interface DefinitionListed {
  id: string;
  name: string;
  sql: string;
  public: boolean;
  tables: string[];
  created_at: string;
}

export interface ParamSpec {
  name: string;
  type: string;
  reserved: boolean;
  nullable: boolean;
}

export interface DefinitionOut {
  id: string;
  name: string;
  sql: string;
  public: boolean;
  kind: string;
  params: ParamSpec[];
  keyset: boolean;
  keyset_unavailable?: string;
  warnings: SqlWarning[];
  created_at: string;
}

export interface ExecuteResult {
  rows: Record<string, unknown>[];
  next_cursor?: string | null;
  warnings: SqlWarning[];
  affected_rows?: number;
}

export interface ClusterMember {
  node_id: string;
  advertise: string;
  status: string;
  last_heartbeat: string;
}

export interface ClusterView {
  node_id: string;
  epoch: number;
  members: ClusterMember[];
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: { kind: string; id: string | null; name: string | null };
  action: string;
  project: string | null;
  target: string;
  ip: string | null;
  request_id: string | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  next_cursor: string | null;
}

export interface Status {
  status: string;
}
