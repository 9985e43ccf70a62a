//! The one table of kills `list` and `watch` print: the same columns, the
//! same cells, the same way of fitting a terminal.
//!
//! Fitting a narrow terminal, in this order, each step only as far as
//! needed: the time loses its weekday (never its clock or zone); the cgroup
//! path is cut from the left (its end names the service or container);
//! the command name, container and pod are cut to a readable minimum; the
//! columns move closer; the cgroup gives way to the container and pod
//! columns, which name the same place. IMAGE only appears where there is
//! room for it. In a pipe nothing is cut. No line ends in spaces.

use std::borrow::Cow;

use super::format;
use crate::model::Kill;

/// One column of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Id,
    Time,
    /// How many victims an incident had (`list --incidents`).
    Victims,
    Pid,
    Comm,
    Cgroup,
    AnonRss,
    Limit,
    Container,
    Pod,
    Image,
}

/// Which end of a cell too long for its column gives way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    Never,
    /// Keep the end: a path's last parts, an image's name and tag.
    Left,
    /// Keep the start.
    Right,
}

/// The weekday and its space (`Wed `), the first thing a narrow TIME drops.
const WEEKDAY: usize = 4;

impl Column {
    pub const fn header(self) -> &'static str {
        match self {
            Column::Id => "ID",
            Column::Time => "TIME",
            Column::Victims => "VICTIMS",
            Column::Pid => "PID",
            Column::Comm => "COMM",
            Column::Cgroup => "CGROUP",
            Column::AnonRss => "ANON RSS",
            Column::Limit => "LIMIT",
            Column::Container => "CONTAINER",
            Column::Pod => "POD",
            Column::Image => "IMAGE",
        }
    }

    const fn right_aligned(self) -> bool {
        matches!(self, Column::Id | Column::Victims | Column::Pid | Column::AnonRss | Column::Limit)
    }

    const fn cut(self) -> Cut {
        match self {
            Column::Cgroup | Column::Image => Cut::Left,
            Column::Comm | Column::Container | Column::Pod => Cut::Right,
            _ => Cut::Never,
        }
    }

    /// The narrowest a cut column gets before the next step is taken.
    const fn min(self) -> usize {
        match self {
            Column::Comm => 10,
            Column::Cgroup => 16,
            Column::Container | Column::Pod | Column::Image => 12,
            _ => 0,
        }
    }

    /// The width `watch` reserves, before it has seen a row.
    const fn typical(self) -> usize {
        match self {
            Column::Id => 6,
            Column::Time => 27,
            Column::Victims => 7,
            Column::Pid => 7,
            Column::Comm => 15,
            Column::Cgroup => 40,
            Column::AnonRss | Column::Limit => 10,
            Column::Container => 16,
            Column::Pod => 24,
            Column::Image => 24,
        }
    }

    /// This column's text for `kill` (`victims`: the incident's count).
    pub fn cell(self, kill: &Kill, victims: Option<usize>, compact_time: bool) -> String {
        let dash = || "-".to_owned();
        match self {
            Column::Id => format::opt(kill.id),
            Column::Time if compact_time => format::local_time_compact(kill.time_ns),
            Column::Time => format::local_time(kill.time_ns),
            Column::Victims => format::opt(victims),
            Column::Pid => kill.victim.pid.to_string(),
            Column::Comm => kill.victim.comm.as_deref().map_or_else(dash, |c| format::escape(c).into_owned()),
            Column::Cgroup => kill.cgroup.as_deref().map_or_else(dash, |c| format::escape(c).into_owned()),
            Column::AnonRss => format::kb(kill.victim.figures.anon_rss_kb),
            Column::Limit => format::limit(kill.memory_limit_bytes),
            Column::Container => container_cell(kill).unwrap_or_else(dash),
            Column::Pod => pod_cell(kill).unwrap_or_else(dash),
            Column::Image => image_cell(kill).unwrap_or_else(dash),
        }
    }
}

/// CONTAINER as people name it: its name, else the id shortened as
/// `docker ps` does (12 hex digits).
pub fn container_cell(kill: &Kill) -> Option<String> {
    let c = kill.container.as_ref()?;
    c.container_name.clone().or_else(|| c.id.as_ref().map(|id| id.chars().take(12).collect()))
}

/// POD as kubectl names it: `namespace/name`.
pub fn pod_cell(kill: &Kill) -> Option<String> {
    let c = kill.container.as_ref()?;
    let name = c.pod_name.as_ref()?;
    Some(match &c.pod_namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    })
}

pub fn image_cell(kill: &Kill) -> Option<String> {
    kill.container.as_ref()?.image.clone()
}

/// The columns every table has, in order; CONTAINER, POD and IMAGE follow
/// when wanted.
pub const BASE: [Column; 7] =
    [Column::Id, Column::Time, Column::Pid, Column::Comm, Column::Cgroup, Column::AnonRss, Column::Limit];

/// One row: a kill, and for an incident how many victims it had.
pub struct Row<'a> {
    pub kill: &'a Kill,
    pub victims: Option<usize>,
}

/// Columns and their widths, fitted once; then any number of rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    columns: Vec<Column>,
    widths: Vec<usize>,
    /// Each column's width before fitting: what a cut column gets back when
    /// a later step (the cgroup giving way) frees room.
    natural: Vec<usize>,
    /// TIME's width without the weekday.
    compact_time_width: usize,
    gap: usize,
    compact_time: bool,
    /// The terminal's width; `None` in a pipe, where nothing is cut.
    width: Option<usize>,
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

impl Table {
    /// `list`'s table: the columns `rows` need (`extra` after the base
    /// ones; IMAGE only where there is room), as wide as their widest cell.
    pub fn fit(rows: &[Row<'_>], extra: &[Column], width: Option<usize>) -> Table {
        let mut columns: Vec<Column> = BASE.to_vec();
        // An incident's count goes after its time.
        if extra.contains(&Column::Victims) {
            columns.insert(2, Column::Victims);
        }
        for column in [Column::Container, Column::Pod] {
            if rows.iter().any(|r| column.cell(r.kill, None, false) != "-") {
                columns.push(column);
            }
        }
        let natural = |column: Column| {
            rows.iter()
                .map(|r| chars(&column.cell(r.kill, r.victims, false)))
                .chain([chars(column.header())])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = columns.iter().map(|c| natural(*c)).collect();
        let compact_time_width = rows
            .iter()
            .map(|r| chars(&Column::Time.cell(r.kill, None, true)))
            .chain([chars(Column::Time.header())])
            .max()
            .unwrap_or(0);
        let mut table = Table {
            columns,
            natural: widths.clone(),
            widths,
            compact_time_width,
            gap: 2,
            compact_time: false,
            width,
        };
        table.shrink_to_fit();
        if rows.iter().any(|r| image_cell(r.kill).is_some()) {
            table.add_if_room(Column::Image, natural(Column::Image));
        }
        table
    }

    /// `watch`'s table: given columns at their typical widths, fitted to
    /// the terminal before any row is known. In a pipe a longer cell
    /// pushes the rest of its line right rather than being cut.
    pub fn fixed(columns: &[Column], width: Option<usize>) -> Table {
        let (with_image, columns): (Vec<Column>, Vec<Column>) =
            columns.iter().partition(|c| **c == Column::Image);
        let widths: Vec<usize> = columns.iter().map(|c| c.typical().max(chars(c.header()))).collect();
        let mut table = Table {
            columns,
            natural: widths.clone(),
            widths,
            compact_time_width: Column::Time.typical() - WEEKDAY,
            gap: 2,
            compact_time: false,
            width,
        };
        table.shrink_to_fit();
        if !with_image.is_empty() {
            table.add_if_room(Column::Image, Column::Image.typical());
        }
        table
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    fn total(&self) -> usize {
        self.widths.iter().sum::<usize>() + self.gap * self.widths.len().saturating_sub(1)
    }

    fn excess(&self) -> usize {
        self.width.map_or(0, |w| self.total().saturating_sub(w))
    }

    /// Narrows `column` by what is still too wide, not below `min`.
    fn narrow(&mut self, column: Column, min: usize) {
        let excess = self.excess();
        if let Some(i) = self.columns.iter().position(|c| *c == column) {
            let floor = min.max(chars(column.header()).min(min));
            self.widths[i] = self.widths[i].saturating_sub(excess).max(floor.min(self.widths[i]));
        }
    }

    fn shrink_to_fit(&mut self) {
        if self.excess() == 0 {
            return;
        }
        self.compact_time = true;
        if let Some(i) = self.columns.iter().position(|c| *c == Column::Time) {
            self.widths[i] = self.compact_time_width;
        }
        for column in [Column::Cgroup, Column::Comm, Column::Pod, Column::Container] {
            self.narrow(column, column.min());
        }
        if self.excess() > 0 {
            self.gap = 1;
        }
        let names_the_place = self.columns.iter().any(|c| matches!(c, Column::Container | Column::Pod));
        if !names_the_place {
            self.narrow(Column::Cgroup, 8);
        } else if self.excess() > 0 {
            if let Some(i) = self.columns.iter().position(|c| *c == Column::Cgroup) {
                self.columns.remove(i);
                self.widths.remove(i);
                self.natural.remove(i);
            }
        }
        // Still too wide: the names go below their readable minimum before
        // a line is cut.
        for column in [Column::Pod, Column::Container, Column::Comm] {
            self.narrow(column, 8);
        }
        self.give_back();
    }

    /// Room a later step freed goes back to what was cut, in the reverse
    /// order of the cuts (the cgroup last: it was the first to give way).
    fn give_back(&mut self) {
        let Some(width) = self.width else { return };
        for column in [Column::Container, Column::Pod, Column::Comm, Column::Cgroup] {
            let Some(i) = self.columns.iter().position(|c| *c == column) else { continue };
            let room = width.saturating_sub(self.total());
            self.widths[i] = self.natural[i].min(self.widths[i] + room);
        }
        if self.gap == 1 && self.total() + self.widths.len().saturating_sub(1) <= width {
            self.gap = 2;
        }
    }

    /// Adds `column` last when the terminal has room for its minimum.
    fn add_if_room(&mut self, column: Column, natural: usize) {
        let natural = natural.max(chars(column.header()));
        let room = self.width.map_or(natural, |w| w.saturating_sub(self.total() + self.gap));
        let width = natural.min(room);
        if width >= natural.min(column.min()) && width > 0 {
            self.columns.push(column);
            self.widths.push(width);
            self.natural.push(natural);
        }
    }

    pub fn header(&self) -> String {
        self.line(self.columns.iter().map(|c| Cow::Borrowed(c.header())))
    }

    pub fn row(&self, row: &Row<'_>) -> String {
        self.line(self.columns.iter().map(|c| Cow::Owned(c.cell(row.kill, row.victims, self.compact_time))))
    }

    fn line<'a>(&self, cells: impl Iterator<Item = Cow<'a, str>>) -> String {
        let mut line = String::new();
        for (i, (cell, column)) in cells.zip(&self.columns).enumerate() {
            let width = self.widths[i];
            let cell = match self.width {
                Some(_) => cut(&cell, width, column.cut()),
                None => cell,
            };
            if i > 0 {
                line.extend(std::iter::repeat_n(' ', self.gap));
            }
            let pad = width.saturating_sub(chars(&cell));
            if column.right_aligned() {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(&cell);
            } else {
                line.push_str(&cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let line = line.trim_end();
        // Last resort, on a terminal too narrow for even the fitted table:
        // cut the line, never wrap it.
        match self.width {
            Some(w) if chars(line) > w => cut(line, w, Cut::Right).into_owned(),
            _ => line.to_owned(),
        }
    }
}

/// `text` in at most `width` characters, `…` where it was cut.
fn cut(text: &str, width: usize, how: Cut) -> Cow<'_, str> {
    let n = chars(text);
    if n <= width || how == Cut::Never || width == 0 {
        return Cow::Borrowed(text);
    }
    let keep = width - 1;
    Cow::Owned(match how {
        Cut::Left => std::iter::once('…').chain(text.chars().skip(n - keep)).collect(),
        _ => text.chars().take(keep).chain(std::iter::once('…')).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{identity::Identity, Victim};

    const CID: &str = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";

    fn kill(id: i64, comm: &str, cgroup: &str, container: Option<Identity>) -> Kill {
        Kill {
            id: Some(id),
            // An hour ago, on any day the tests run.
            time_ns: Some(crate::clock::wall_ns_now() - 3_600_000_000_000),
            victim: Victim { pid: 4_194_304, comm: Some(comm.into()), ..Victim::default() },
            cgroup: Some(cgroup.into()),
            memory_limit_bytes: Some(64 << 20),
            container,
            ..Kill::default()
        }
    }

    fn render(table: &Table, kills: &[Kill]) -> Vec<String> {
        let mut lines = vec![table.header()];
        lines.extend(kills.iter().map(|k| table.row(&Row { kill: k, victims: None })));
        lines
    }

    fn fit(kills: &[Kill], width: Option<usize>) -> (Table, Vec<String>) {
        let rows: Vec<Row> = kills.iter().map(|k| Row { kill: k, victims: None }).collect();
        let table = Table::fit(&rows, &[], width);
        let lines = render(&table, kills);
        (table, lines)
    }

    #[test]
    fn at_80_columns_the_time_stays_whole_and_the_cgroup_keeps_its_end() {
        let path = format!("/system.slice/docker-{CID}.scope");
        let kills =
            [kill(12, "oomhog-manual", &path, None), kill(13, "java", "/user.slice/session-2.scope", None)];
        let (_, lines) = fit(&kills, Some(80));
        for line in &lines {
            assert!(line.chars().count() <= 80, "{line:?}");
            assert_eq!(line.trim_end(), line, "trailing spaces: {line:?}");
        }
        let clock = format::local_time_compact(kills[0].time_ns);
        assert!(lines[1].contains(&clock), "the time whole: {clock:?} in {:?}", lines[1]);
        assert!(lines[1].contains("7081.scope") && lines[1].contains('…'), "{:?}", lines[1]);
        assert!(!lines[1].contains("/system.slice/docker-"), "cut from the left: {:?}", lines[1]);
        assert!(lines[1].contains("64.0 MiB") && lines[1].contains("4194304"), "{:?}", lines[1]);
        // A pipe: every cell whole, the weekday kept.
        let (_, whole) = fit(&kills, None);
        assert!(
            whole[1].contains(&path) && whole[1].contains(&format::local_time(kills[0].time_ns)),
            "{whole:?}"
        );
        assert!(whole.iter().all(|l| l.trim_end() == l));
    }

    #[test]
    fn image_only_where_there_is_room_and_the_container_names_the_place() {
        let identity = Identity {
            container_name: Some("web".into()),
            id: Some(CID.into()),
            pod_name: Some("web-7d4b9c-x2k4q".into()),
            pod_namespace: Some("shop".into()),
            image: Some("registry.example/shop/web:1.25.3".into()),
            ..Identity::default()
        };
        let path = format!("/kubepods.slice/kubepods-pod1.slice/cri-containerd-{CID}.scope");
        let kills = [kill(7, "nginx", &path, Some(identity))];
        let (wide, lines) = fit(&kills, Some(300));
        assert!(wide.columns().contains(&Column::Image), "{lines:?}");
        assert!(
            lines[1].contains("registry.example/shop/web:1.25.3") && lines[1].contains(&path),
            "{lines:?}"
        );
        let (narrow, lines) = fit(&kills, Some(80));
        assert!(!narrow.columns().contains(&Column::Image), "no room at 80: {lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{lines:#?}");
        assert!(lines[1].contains(" web ") && lines[1].contains(" shop/web-"), "{lines:?}");
        // A little wider and the pod's name comes back first.
        let (_, lines) = fit(&kills, Some(90));
        assert!(lines[1].contains("shop/web-7d4b9c-x2k4q"), "{lines:?}");
    }

    #[test]
    fn watch_fits_the_same_columns_before_it_sees_a_row() {
        let columns = [BASE.as_slice(), &[Column::Container, Column::Pod]].concat();
        let table = Table::fixed(&columns, Some(80));
        let k = kill(3, "dd", "/a/b", None);
        let line = table.row(&Row { kill: &k, victims: None });
        assert!(table.header().chars().count() <= 80 && line.chars().count() <= 80, "{line}");
        assert!(
            table.header().starts_with("    ID  TIME") || table.header().contains("TIME"),
            "{}",
            table.header()
        );
        // In a pipe: the typical widths, and a longer cell is not cut.
        let pipe = Table::fixed(&BASE, None);
        let long = kill(4, "dd", &format!("/{}", "x".repeat(100)), None);
        assert!(pipe.row(&Row { kill: &long, victims: None }).contains(&"x".repeat(100)));
    }

    #[test]
    fn cells_cut_at_the_named_end() {
        assert_eq!(cut("/a/b/c.scope", 8, Cut::Left), "…c.scope");
        assert_eq!(cut("oomhog-manual", 6, Cut::Right), "oomho…");
        assert_eq!(cut("Wed", 2, Cut::Never), "Wed");
        assert_eq!(cut("short", 9, Cut::Left), "short");
    }

    #[test]
    fn a_name_with_a_newline_keeps_its_row_on_one_line() {
        let k = kill(5, "evil\nname", "/a", None);
        let (_, lines) = fit(std::slice::from_ref(&k), None);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("evil\\nname"), "{lines:?}");
    }
}
