//! The simple DB's rows on the embedded store: the `RowStore` implementation, the row, index
//! and count writes the writer thread applies, and the byte layouts of their keys (see the
//! parent module's table list).

use super::writer::*;
use super::*;

impl WriteTables<'_> {
    pub(super) fn create_sql_table(
        &mut self,
        table: &TableRecord,
        max: u64,
    ) -> Result<Outcome, StoreError> {
        let key = sql_table_key(table.project_id, &table.name);
        if self
            .sql_tables
            .get(key.as_slice())
            .ctx("read sql table")?
            .is_some()
        {
            return Ok(Outcome::Meta(MetaInserted::AlreadyExists));
        }
        let count = count_prefix(&self.sql_tables, table.project_id.as_bytes(), "sql tables")?;
        if count >= max {
            return Ok(Outcome::Meta(MetaInserted::QuotaExceeded));
        }
        put(&mut self.sql_tables, &key, table, "sql table")?;
        Ok(Outcome::Meta(MetaInserted::Created))
    }

    pub(super) fn update_sql_table(
        &mut self,
        table: &TableRecord,
        expected: u64,
    ) -> Result<Outcome, StoreError> {
        let key = sql_table_key(table.project_id, &table.name);
        let Some(stored) = get_owned(&self.sql_tables, &key, "sql table")? else {
            return Ok(Outcome::Swapped(false));
        };
        let stored: TableRecord = decode(&stored, "sql table")?;
        if stored.version != expected || stored.id != table.id {
            return Ok(Outcome::Swapped(false));
        }
        put(&mut self.sql_tables, &key, table, "sql table")?;
        Ok(Outcome::Swapped(true))
    }

    pub(super) fn insert_definition(
        &mut self,
        definition: &DefinitionRecord,
        max: u64,
    ) -> Result<Outcome, StoreError> {
        let others = self.project_definitions(definition.project_id)?;
        if others
            .iter()
            .any(|o| o.name == definition.name || o.id == definition.id)
        {
            return Ok(Outcome::Meta(MetaInserted::AlreadyExists));
        }
        if others.len() as u64 >= max {
            return Ok(Outcome::Meta(MetaInserted::QuotaExceeded));
        }
        let key = [
            definition.project_id.as_bytes().as_slice(),
            definition.id.as_bytes(),
        ]
        .concat();
        put(
            &mut self.sql_definitions,
            &key,
            definition,
            "sql definition",
        )?;
        Ok(Outcome::Meta(MetaInserted::Created))
    }

    /// Every definition of a project (one small key range; bounded by the quota).
    pub(super) fn project_definitions(
        &self,
        project_id: Uuid,
    ) -> Result<Vec<DefinitionRecord>, StoreError> {
        let prefix = project_id.as_bytes();
        let mut out = Vec::new();
        for entry in self
            .sql_definitions
            .range::<&[u8]>(prefix.as_slice()..)
            .ctx("scan sql definitions")?
        {
            let (key, value) = entry.ctx("scan sql definitions")?;
            if !key.value().starts_with(prefix) {
                break;
            }
            out.push(decode(value.value(), "sql definition")?);
        }
        Ok(out)
    }

    /// Same id, new record; the name must be free among the project's other definitions.
    pub(super) fn replace_definition(
        &mut self,
        definition: &DefinitionRecord,
    ) -> Result<MetaReplaced, StoreError> {
        let prefix = definition.project_id.as_bytes();
        let key = [prefix.as_slice(), definition.id.as_bytes()].concat();
        if get_owned(&self.sql_definitions, &key, "sql definition")?.is_none() {
            return Ok(MetaReplaced::NotFound);
        }
        if self
            .project_definitions(definition.project_id)?
            .iter()
            .any(|o| o.id != definition.id && o.name == definition.name)
        {
            return Ok(MetaReplaced::NameTaken);
        }
        put(
            &mut self.sql_definitions,
            &key,
            definition,
            "sql definition",
        )?;
        Ok(MetaReplaced::Replaced)
    }

    /// The row at `addr` still holds exactly `row` (`None`: it is absent).
    pub(super) fn row_is(
        &self,
        table: TableKey,
        addr: &RowAddr,
        row: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let stored = get_owned(&self.sql_rows, &row_key(table, addr), "row")?;
        Ok(stored.as_deref() == row)
    }

    pub(super) fn put_index_entry(
        &mut self,
        table: TableKey,
        addr: &RowAddr,
        row: &[u8],
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        // Checked in the writer's transaction: no row write can slip between check and entry.
        if !self.row_is(table, addr, Some(row))? {
            return Ok(RowWritten::Conflict);
        }
        if let Some(index) = self.unique_taken(table, std::slice::from_ref(entry), &addr.pk)? {
            return Ok(RowWritten::UniqueViolation { index });
        }
        self.sql_index
            .insert(index_entry_key(table, entry, &addr.pk).as_slice(), ())
            .ctx("write index entry")?;
        Ok(RowWritten::Done)
    }

    pub(super) fn remove_index_entry(
        &mut self,
        table: TableKey,
        addr: &RowAddr,
        row: Option<&[u8]>,
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        if !self.row_is(table, addr, row)? {
            return Ok(RowWritten::Conflict);
        }
        // The key names (index, key, pk): another row's entry of the same key stays.
        self.sql_index
            .remove(index_entry_key(table, entry, &addr.pk).as_slice())
            .ctx("remove index entry")?;
        Ok(RowWritten::Done)
    }

    pub(super) fn insert_row(&mut self, insert: &RowInsert) -> Result<RowWritten, StoreError> {
        let key = row_key(insert.table, &insert.addr);
        if self.sql_rows.get(key.as_slice()).ctx("read row")?.is_some() {
            return Ok(RowWritten::Conflict);
        }
        if let Some(index) =
            self.unique_taken(insert.table, &insert.index_entries, &insert.addr.pk)?
        {
            return Ok(RowWritten::UniqueViolation { index });
        }
        let table_count = self.count(&table_count_key(insert.table))?;
        let project_count = self.count(insert.table.project_id.as_bytes())?;
        if table_count >= insert.quota.max_table_rows
            || project_count >= insert.quota.max_project_rows
        {
            return Ok(RowWritten::QuotaExceeded);
        }
        self.sql_rows
            .insert(key.as_slice(), insert.value.as_slice())
            .ctx("write row")?;
        for entry in &insert.index_entries {
            self.sql_index
                .insert(
                    index_entry_key(insert.table, entry, &insert.addr.pk).as_slice(),
                    (),
                )
                .ctx("write index entry")?;
        }
        self.sql_counts
            .insert(table_count_key(insert.table).as_slice(), table_count + 1)
            .ctx("write row count")?;
        self.sql_counts
            .insert(
                insert.table.project_id.as_bytes().as_slice(),
                project_count + 1,
            )
            .ctx("write row count")?;
        Ok(RowWritten::Done)
    }

    pub(super) fn update_row(&mut self, update: &RowUpdate) -> Result<RowWritten, StoreError> {
        let key = row_key(update.table, &update.addr);
        match get_owned(&self.sql_rows, &key, "row")? {
            Some(stored) if stored == update.expected => {}
            _ => return Ok(RowWritten::Conflict),
        }
        // Entries that stay put are neither checked against themselves nor rewritten.
        let added: Vec<IndexEntry> = update
            .new_entries
            .iter()
            .filter(|e| !update.old_entries.contains(e))
            .cloned()
            .collect();
        if let Some(index) = self.unique_taken(update.table, &added, &update.addr.pk)? {
            return Ok(RowWritten::UniqueViolation { index });
        }
        for entry in update
            .old_entries
            .iter()
            .filter(|e| !update.new_entries.contains(e))
        {
            self.sql_index
                .remove(index_entry_key(update.table, entry, &update.addr.pk).as_slice())
                .ctx("remove index entry")?;
        }
        for entry in &added {
            self.sql_index
                .insert(
                    index_entry_key(update.table, entry, &update.addr.pk).as_slice(),
                    (),
                )
                .ctx("write index entry")?;
        }
        self.sql_rows
            .insert(key.as_slice(), update.value.as_slice())
            .ctx("write row")?;
        Ok(RowWritten::Done)
    }

    pub(super) fn delete_row(&mut self, delete: &RowDelete) -> Result<RowWritten, StoreError> {
        let key = row_key(delete.table, &delete.addr);
        match get_owned(&self.sql_rows, &key, "row")? {
            Some(stored) if stored == delete.expected => {}
            _ => return Ok(RowWritten::Conflict),
        }
        self.sql_rows.remove(key.as_slice()).ctx("delete row")?;
        for entry in &delete.entries {
            self.sql_index
                .remove(index_entry_key(delete.table, entry, &delete.addr.pk).as_slice())
                .ctx("remove index entry")?;
        }
        self.add_counts(delete.table, -1)?;
        Ok(RowWritten::Done)
    }

    pub(super) fn purge_sql_rows(
        &mut self,
        table: TableKey,
        limit: usize,
    ) -> Result<Outcome, StoreError> {
        let prefix = table_prefix(table);
        let rows = keys_with_prefix(&self.sql_rows, &prefix, limit, "rows")?;
        for key in &rows {
            self.sql_rows.remove(key.as_slice()).ctx("purge row")?;
        }
        let entries = keys_with_prefix(&self.sql_index, &prefix, limit, "index entries")?;
        for key in &entries {
            self.sql_index
                .remove(key.as_slice())
                .ctx("purge index entry")?;
        }
        let deleted = rows.len() as u64;
        self.add_counts(table, -(rows.len() as i64))?;
        if rows.is_empty() && entries.is_empty() {
            self.sql_counts
                .remove(table_count_key(table).as_slice())
                .ctx("remove row count")?;
        }
        Ok(Outcome::Count(deleted.max(entries.len() as u64)))
    }

    /// The first unique index among `entries` whose key another row already holds.
    pub(super) fn unique_taken(
        &self,
        table: TableKey,
        entries: &[IndexEntry],
        pk: &[u8],
    ) -> Result<Option<String>, StoreError> {
        for entry in entries.iter().filter(|e| e.unique) {
            let (start, end) = index_key_range(table, &entry.index, &entry.key);
            for found in self
                .sql_index
                .range::<&[u8]>(start.as_slice()..end.as_slice())
                .ctx("check unique index")?
            {
                let (found, _) = found.ctx("check unique index")?;
                if !found.value().ends_with(pk) || found.value().len() != start.len() + pk.len() {
                    return Ok(Some(entry.index.clone()));
                }
            }
        }
        Ok(None)
    }

    pub(super) fn count(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .sql_counts
            .get(key)
            .ctx("read row count")?
            .map_or(0, |v| v.value()))
    }

    pub(super) fn add_counts(&mut self, table: TableKey, delta: i64) -> Result<(), StoreError> {
        for key in [table_count_key(table), table.project_id.as_bytes().to_vec()] {
            let count = self.count(&key)?.saturating_add_signed(delta);
            self.sql_counts
                .insert(key.as_slice(), count)
                .ctx("write row count")?;
        }
        Ok(())
    }
}

pub(super) fn count_prefix(
    table: &Table<'_, Bytes, Bytes>,
    prefix: &[u8],
    what: &str,
) -> Result<u64, StoreError> {
    let mut count = 0;
    for entry in table
        .range::<&[u8]>(prefix..)
        .ctx(&format!("scan {what}"))?
    {
        let (key, _) = entry.ctx(&format!("scan {what}"))?;
        if !key.value().starts_with(prefix) {
            break;
        }
        count += 1;
    }
    Ok(count)
}

pub(super) fn keys_with_prefix<V: redb::Value + 'static>(
    table: &Table<'_, Bytes, V>,
    prefix: &[u8],
    limit: usize,
    what: &str,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut keys = Vec::new();
    for entry in table
        .range::<&[u8]>(prefix..)
        .ctx(&format!("scan {what}"))?
    {
        let (key, _) = entry.ctx(&format!("scan {what}"))?;
        if !key.value().starts_with(prefix) || keys.len() >= limit {
            break;
        }
        keys.push(key.value().to_vec());
    }
    Ok(keys)
}

pub(super) fn sql_table_key(project_id: Uuid, name: &str) -> Vec<u8> {
    [project_id.as_bytes().as_slice(), name.as_bytes()].concat()
}

pub(super) fn table_prefix(table: TableKey) -> Vec<u8> {
    [
        table.project_id.as_bytes().as_slice(),
        table.table_id.as_bytes(),
    ]
    .concat()
}

/// The per-project count key is 16 bytes, this one 33: they never collide.
pub(super) fn table_count_key(table: TableKey) -> Vec<u8> {
    let mut key = table_prefix(table);
    key.push(0);
    key
}

pub(super) fn bucket_prefix(table: TableKey, bucket: u32) -> Vec<u8> {
    let mut key = table_prefix(table);
    key.extend_from_slice(&bucket.to_be_bytes());
    key
}

pub(super) fn row_key(table: TableKey, addr: &RowAddr) -> Vec<u8> {
    let mut key = bucket_prefix(table, addr.bucket);
    key.extend_from_slice(&addr.pk);
    key
}

/// Row keys and index keys share the (project, table) prefix; the index name's length byte
/// cannot be confused with a bucket because they live in different redb tables.
pub(super) fn index_prefix(table: TableKey, index: &str) -> Vec<u8> {
    let mut key = table_prefix(table);
    let name = index.as_bytes();
    // Index names are short identifiers (checked by the SQL layer); clamp defensively.
    let len = name.len().min(255);
    key.push(len as u8);
    key.extend_from_slice(&name[..len]);
    key
}

/// 0x00 becomes 0x00 0xFF and the key ends with 0x00 0x00: order-preserving and prefix-free.
pub(super) fn escape_into(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

pub(super) fn index_key_start(table: TableKey, index: &str, key: &[u8]) -> Vec<u8> {
    let mut out = index_prefix(table, index);
    escape_into(&mut out, key);
    out.extend_from_slice(&[0, 0]);
    out
}

/// [start, end): every entry whose key is exactly `key`.
pub(super) fn index_key_range(table: TableKey, index: &str, key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = index_key_start(table, index, key);
    let mut end = start.clone();
    let last = end.len() - 1;
    end[last] = 1;
    (start, end)
}

pub(super) fn index_entry_key(table: TableKey, entry: &IndexEntry, pk: &[u8]) -> Vec<u8> {
    let mut key = index_key_start(table, &entry.index, &entry.key);
    key.extend_from_slice(pk);
    key
}

/// Splits an index entry key (after its prefix) into (key, pk).
pub(super) fn split_index_entry(rest: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut key = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i + 1 < rest.len() {
        match (rest[i], rest[i + 1]) {
            (0, 0) => return Some((key, rest[i + 2..].to_vec())),
            (0, 0xFF) => {
                key.push(0);
                i += 2;
            }
            (0, _) => return None,
            (b, _) => {
                key.push(b);
                i += 1;
            }
        }
    }
    None
}

/// The smallest byte string greater than every string starting with `prefix`.
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(super) fn lower_index_bound(
    table: TableKey,
    index: &str,
    bound: &IndexBound,
) -> Bound<Vec<u8>> {
    match bound {
        IndexBound::Unbounded => Bound::Included(index_prefix(table, index)),
        IndexBound::Key {
            key,
            inclusive: true,
        } => Bound::Included(index_key_start(table, index, key)),
        IndexBound::Key {
            key,
            inclusive: false,
        } => Bound::Included(index_key_range(table, index, key).1),
        IndexBound::Entry { key, pk } => {
            let mut k = index_key_start(table, index, key);
            k.extend_from_slice(pk);
            Bound::Excluded(k)
        }
    }
}

pub(super) fn upper_index_bound(
    table: TableKey,
    index: &str,
    bound: &IndexBound,
) -> Bound<Vec<u8>> {
    match bound {
        IndexBound::Unbounded => match prefix_end(&index_prefix(table, index)) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        },
        IndexBound::Key {
            key,
            inclusive: true,
        } => Bound::Excluded(index_key_range(table, index, key).1),
        IndexBound::Key {
            key,
            inclusive: false,
        } => Bound::Excluded(index_key_start(table, index, key)),
        IndexBound::Entry { key, pk } => {
            let mut k = index_key_start(table, index, key);
            k.extend_from_slice(pk);
            Bound::Excluded(k)
        }
    }
}

pub(super) fn bucket_bounds(
    table: TableKey,
    bucket: u32,
    range: &PkRange,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefix = bucket_prefix(table, bucket);
    let with = |pk: &Vec<u8>| [prefix.as_slice(), pk.as_slice()].concat();
    let lower = match &range.lower {
        Bound::Unbounded => Bound::Included(prefix.clone()),
        Bound::Included(pk) => Bound::Included(with(pk)),
        Bound::Excluded(pk) => Bound::Excluded(with(pk)),
    };
    let upper = match &range.upper {
        Bound::Unbounded => prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Included(pk) => Bound::Included(with(pk)),
        Bound::Excluded(pk) => Bound::Excluded(with(pk)),
    };
    (lower, upper)
}

pub(super) fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// An empty or inverted range: redb panics on `start > end`.
pub(super) fn empty_range(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
        _ => false,
    }
}

impl EmbeddedStore {
    pub(super) async fn write_meta(
        &self,
        op: WriteOp,
        what: &str,
    ) -> Result<MetaInserted, StoreError> {
        match self.write(op).await? {
            Outcome::Meta(inserted) => Ok(inserted),
            other => Err(mismatch(what, &other)),
        }
    }

    pub(super) async fn write_row(
        &self,
        op: WriteOp,
        what: &str,
    ) -> Result<RowWritten, StoreError> {
        match self.write(op).await? {
            Outcome::Row(written) => Ok(written),
            other => Err(mismatch(what, &other)),
        }
    }
}

#[async_trait]
impl RowStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn create_table(
        &self,
        table: &TableRecord,
        max_tables: u64,
    ) -> Result<MetaInserted, StoreError> {
        self.write_meta(
            WriteOp::CreateSqlTable(table.clone(), max_tables),
            "create table",
        )
        .await
    }

    async fn get_table(
        &self,
        project_id: Uuid,
        name: &str,
    ) -> Result<Option<TableRecord>, StoreError> {
        let key = sql_table_key(project_id, name);
        self.read(move |txn| get_one(txn, SQL_TABLES, &key, "sql table"))
            .await
    }

    async fn list_tables(&self, project_id: Uuid) -> Result<Vec<TableRecord>, StoreError> {
        self.read(move |txn| list_prefix(txn, SQL_TABLES, project_id.as_bytes(), "sql table"))
            .await
    }

    async fn update_table(
        &self,
        table: &TableRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        self.write_swapped(
            WriteOp::UpdateSqlTable(table.clone(), expected_version),
            "update table",
        )
        .await
    }

    async fn delete_table(&self, project_id: Uuid, name: &str) -> Result<bool, StoreError> {
        self.write_swapped(
            WriteOp::DeleteSqlTable(project_id, name.to_owned()),
            "delete table",
        )
        .await
    }

    async fn purge_rows(
        &self,
        table: TableKey,
        _buckets: u32,
        limit: usize,
    ) -> Result<u64, StoreError> {
        match self
            .write(WriteOp::PurgeSqlRows(table, limit.max(1)))
            .await?
        {
            Outcome::Count(n) => Ok(n),
            other => Err(mismatch("purge rows", &other)),
        }
    }

    async fn insert_definition(
        &self,
        definition: &DefinitionRecord,
        max_definitions: u64,
    ) -> Result<MetaInserted, StoreError> {
        self.write_meta(
            WriteOp::InsertDefinition(definition.clone(), max_definitions),
            "insert definition",
        )
        .await
    }

    async fn get_definition(
        &self,
        project_id: Uuid,
        id: Uuid,
    ) -> Result<Option<DefinitionRecord>, StoreError> {
        let key = [project_id.as_bytes().as_slice(), id.as_bytes()].concat();
        self.read(move |txn| get_one(txn, SQL_DEFINITIONS, &key, "sql definition"))
            .await
    }

    async fn list_definitions(
        &self,
        project_id: Uuid,
    ) -> Result<Vec<DefinitionRecord>, StoreError> {
        self.read(move |txn| {
            list_prefix(
                txn,
                SQL_DEFINITIONS,
                project_id.as_bytes(),
                "sql definition",
            )
        })
        .await
    }

    async fn delete_definition(&self, project_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.write_swapped(
            WriteOp::DeleteDefinition(project_id, id),
            "delete definition",
        )
        .await
    }

    async fn replace_definition(
        &self,
        definition: &DefinitionRecord,
    ) -> Result<MetaReplaced, StoreError> {
        match self
            .write(WriteOp::ReplaceDefinition(definition.clone()))
            .await?
        {
            Outcome::Replaced(replaced) => Ok(replaced),
            other => Err(mismatch("replace definition", &other)),
        }
    }

    async fn get_rows(
        &self,
        table: TableKey,
        addrs: &[RowAddr],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let keys: Vec<Vec<u8>> = addrs.iter().map(|a| row_key(table, a)).collect();
        self.read(move |txn| {
            let rows = txn.open_table(SQL_ROWS).ctx("open sql rows")?;
            keys.iter()
                .map(|k| {
                    Ok(rows
                        .get(k.as_slice())
                        .ctx("read row")?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    async fn scan_bucket(
        &self,
        table: TableKey,
        bucket: u32,
        range: &PkRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<StoredRow>, StoreError> {
        let (lower, upper) = bucket_bounds(table, bucket, range);
        let skip = bucket_prefix(table, bucket).len();
        self.read(move |txn| {
            if empty_range(&lower, &upper) || limit == 0 {
                return Ok(Vec::new());
            }
            let rows = txn.open_table(SQL_ROWS).ctx("open sql rows")?;
            let iter = rows
                .range::<&[u8]>((as_slice_bound(&lower), as_slice_bound(&upper)))
                .ctx("scan rows")?;
            let convert = |entry: Result<
                (redb::AccessGuard<'_, Bytes>, redb::AccessGuard<'_, Bytes>),
                StorageError,
            >| {
                let (k, v) = entry.ctx("scan rows")?;
                Ok(StoredRow {
                    pk: k.value()[skip..].to_vec(),
                    value: v.value().to_vec(),
                })
            };
            if reverse {
                iter.rev().take(limit).map(convert).collect()
            } else {
                iter.take(limit).map(convert).collect()
            }
        })
        .await
    }

    async fn scan_index(
        &self,
        table: TableKey,
        index: &str,
        range: &IndexRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let lower = lower_index_bound(table, index, &range.lower);
        let upper = upper_index_bound(table, index, &range.upper);
        let skip = index_prefix(table, index).len();
        self.read(move |txn| {
            if empty_range(&lower, &upper) || limit == 0 {
                return Ok(Vec::new());
            }
            let entries = txn.open_table(SQL_INDEX).ctx("open sql index")?;
            let iter = entries
                .range::<&[u8]>((as_slice_bound(&lower), as_slice_bound(&upper)))
                .ctx("scan index")?;
            let convert = |entry: Result<
                (redb::AccessGuard<'_, Bytes>, redb::AccessGuard<'_, ()>),
                StorageError,
            >| {
                let (k, _) = entry.ctx("scan index")?;
                split_index_entry(&k.value()[skip..])
                    .ok_or_else(|| StoreError::Corrupt("malformed index entry key".into()))
            };
            if reverse {
                iter.rev().take(limit).map(convert).collect()
            } else {
                iter.take(limit).map(convert).collect()
            }
        })
        .await
    }

    async fn insert_row(&self, insert: &RowInsert) -> Result<RowWritten, StoreError> {
        self.write_row(WriteOp::InsertRow(insert.clone()), "insert row")
            .await
    }

    async fn update_row(&self, update: &RowUpdate) -> Result<RowWritten, StoreError> {
        self.write_row(WriteOp::UpdateRow(update.clone()), "update row")
            .await
    }

    async fn delete_row(&self, delete: &RowDelete) -> Result<RowWritten, StoreError> {
        self.write_row(WriteOp::DeleteRow(delete.clone()), "delete row")
            .await
    }

    async fn count_rows(&self, table: TableKey) -> Result<u64, StoreError> {
        let key = table_count_key(table);
        self.read(move |txn| {
            let counts = txn.open_table(SQL_COUNTS).ctx("open sql counts")?;
            Ok(counts
                .get(key.as_slice())
                .ctx("read row count")?
                .map_or(0, |v| v.value()))
        })
        .await
    }

    async fn put_index_entry(
        &self,
        table: TableKey,
        addr: &RowAddr,
        row: &[u8],
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        self.write_row(
            WriteOp::PutIndexEntry {
                table,
                addr: addr.clone(),
                row: row.to_vec(),
                entry: entry.clone(),
            },
            "put index entry",
        )
        .await
    }

    async fn remove_index_entry(
        &self,
        table: TableKey,
        addr: &RowAddr,
        row: Option<&[u8]>,
        entry: &IndexEntry,
    ) -> Result<RowWritten, StoreError> {
        self.write_row(
            WriteOp::RemoveIndexEntry {
                table,
                addr: addr.clone(),
                row: row.map(<[u8]>::to_vec),
                entry: entry.clone(),
            },
            "remove index entry",
        )
        .await
    }

    async fn purge_index(
        &self,
        table: TableKey,
        index: &str,
        _unique: bool,
        limit: usize,
    ) -> Result<u64, StoreError> {
        // UNIQUE keys are checked on the entries themselves here: nothing else to release.
        match self
            .write(WriteOp::PurgeIndex {
                table,
                index: index.to_owned(),
                limit: limit.max(1),
            })
            .await?
        {
            Outcome::Count(n) => Ok(n),
            other => Err(mismatch("purge index", &other)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Opening and the format version.
