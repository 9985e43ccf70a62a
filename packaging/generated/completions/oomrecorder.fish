# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_oomrecorder_global_optspecs
    string join \n db= config= h/help V/version
end

function __fish_oomrecorder_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_oomrecorder_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_oomrecorder_using_subcommand
    set -l cmd (__fish_oomrecorder_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "run" -d 'Run the recorder: attach to the kernel and store every OOM kill'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "list" -d 'List recorded kills, newest first'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "show" -d 'Show one recorded kill in full'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "watch" -d 'Print each new kill as it is recorded, until interrupted'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "stats" -d 'Count kills per container, pod, unit and command'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "status" -d 'Is the daemon running, what did it lose, does its count match the kernel\'s?'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "prune" -d 'Delete old kills now, as the daemon does daily'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "import" -d 'Record the kills in kernel logs (dmesg, journalctl -k, syslog, /dev/kmsg dumps)'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "doctor" -d 'Check what the recorder can do on this kernel: BTF, attach point, each field'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "generate-assets" -d 'Write man pages and shell completions into DIR (for packaging)'
complete -c oomrecorder -n "__fish_oomrecorder_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -l max-age -d 'Delete kills older than DAYS (180 or 180d), at start and daily; 0 keeps them whatever their age [default: `max_age_days` in the configuration file, else 180]' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -l max-records -d 'Keep at most N kills, deleting the oldest; 0: no cap [default: `max_records` in the configuration file, else 100000]' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -l metrics-listen -d 'Serve Prometheus metrics on ADDR (`127.0.0.1:9977`; `[::]:9977` for every address) [default: `metrics_listen` in the configuration file, else off]' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -l metrics-textfile -d 'Write the metrics to PATH for node_exporter\'s textfile collector (its directory, a name ending in .prom), after each kill and every minute [default: `metrics_textfile` in the configuration file, else off]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -l force-tracepoint -d 'Attach the oom:mark_victim tracepoint program even where the raw tracepoint is usable (tests keep the fallback path exercised)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand run" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l since -d 'Only kills at or after WHEN: RFC 3339, a date, a local date and time, `today`, `yesterday`, or a span ago (2h, 3d, 1w)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l until -d 'Only kills at or before WHEN (same forms as --since)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l comm -d 'Only victims with this command name (exactly, as the kernel\'s comm)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l pid -d 'Only victims with this PID' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l cgroup -d 'Only kills whose victim, task or OOM cgroup path contains TEXT' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l container -d 'Only kills in this container: a prefix of its id, or its name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l image -d 'Only kills in containers of this image: as the runtime names it (nginx:1.25), or without its tag (nginx)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l pod -d 'Only kills in the Kubernetes pod of this name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l namespace -d 'Only kills in pods of this Kubernetes namespace' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l unit -d 'Only kills in this systemd unit (service or scope)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l boot -d 'Only kills of one boot: 0 the current one, -1 the one before, -N, or a boot id' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -s n -l limit -d 'Show at most N kills; 0: all of them (as `max_records = 0` is no cap)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l global -d 'Only system-wide OOMs: the kernel\'s CONSTRAINT_NONE, else a kill line saying "Out of memory", else no memory cgroup at its limit at the kill'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l memcg -d 'Only OOMs of a memory cgroup\'s limit: CONSTRAINT_MEMCG, else a kill line saying "Memory cgroup out of memory", else a cgroup at its limit'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l reverse -d 'Oldest first (the exact reverse of the default order)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l incidents -d 'One line per incident: the victims of a memory.oom.group kill as one line, named by the first, with their count (--limit counts incidents)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l json -d 'One JSON array for scripts instead of a table'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -l json-lines -d 'One JSON object per line (the rows of --json), for streaming to jq and log shippers'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand list" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l since -d 'Only kills at or after WHEN: RFC 3339, a date, a local date and time, `today`, `yesterday`, or a span ago (2h, 3d, 1w)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l until -d 'Only kills at or before WHEN (same forms as --since)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l comm -d 'Only victims with this command name (exactly, as the kernel\'s comm)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l pid -d 'Only victims with this PID' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l cgroup -d 'Only kills whose victim, task or OOM cgroup path contains TEXT' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l container -d 'Only kills in this container: a prefix of its id, or its name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l image -d 'Only kills in containers of this image: as the runtime names it (nginx:1.25), or without its tag (nginx)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l pod -d 'Only kills in the Kubernetes pod of this name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l namespace -d 'Only kills in pods of this Kubernetes namespace' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l unit -d 'Only kills in this systemd unit (service or scope)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l boot -d 'Only kills of one boot: 0 the current one, -1 the one before, -N, or a boot id' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l global -d 'Only system-wide OOMs: the kernel\'s CONSTRAINT_NONE, else a kill line saying "Out of memory", else no memory cgroup at its limit at the kill'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l memcg -d 'Only OOMs of a memory cgroup\'s limit: CONSTRAINT_MEMCG, else a kill line saying "Memory cgroup out of memory", else a cgroup at its limit'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l json -d 'One JSON object for scripts'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -l raw -d 'Print the kernel\'s report whole (by default the first lines)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand show" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l since -d 'Only kills at or after WHEN: RFC 3339, a date, a local date and time, `today`, `yesterday`, or a span ago (2h, 3d, 1w)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l until -d 'Only kills at or before WHEN (same forms as --since)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l comm -d 'Only victims with this command name (exactly, as the kernel\'s comm)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l pid -d 'Only victims with this PID' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l cgroup -d 'Only kills whose victim, task or OOM cgroup path contains TEXT' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l container -d 'Only kills in this container: a prefix of its id, or its name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l image -d 'Only kills in containers of this image: as the runtime names it (nginx:1.25), or without its tag (nginx)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l pod -d 'Only kills in the Kubernetes pod of this name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l namespace -d 'Only kills in pods of this Kubernetes namespace' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l unit -d 'Only kills in this systemd unit (service or scope)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l boot -d 'Only kills of one boot: 0 the current one, -1 the one before, -N, or a boot id' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l global -d 'Only system-wide OOMs: the kernel\'s CONSTRAINT_NONE, else a kill line saying "Out of memory", else no memory cgroup at its limit at the kill'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l memcg -d 'Only OOMs of a memory cgroup\'s limit: CONSTRAINT_MEMCG, else a kill line saying "Memory cgroup out of memory", else a cgroup at its limit'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -l json-lines -d 'One JSON object per line (the rows of `list --json`) instead of table rows'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand watch" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l since -d 'Only kills at or after WHEN: RFC 3339, a date, a local date and time, `today`, `yesterday`, or a span ago (2h, 3d, 1w)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l until -d 'Only kills at or before WHEN (same forms as --since)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l comm -d 'Only victims with this command name (exactly, as the kernel\'s comm)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l pid -d 'Only victims with this PID' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l cgroup -d 'Only kills whose victim, task or OOM cgroup path contains TEXT' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l container -d 'Only kills in this container: a prefix of its id, or its name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l image -d 'Only kills in containers of this image: as the runtime names it (nginx:1.25), or without its tag (nginx)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l pod -d 'Only kills in the Kubernetes pod of this name' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l namespace -d 'Only kills in pods of this Kubernetes namespace' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l unit -d 'Only kills in this systemd unit (service or scope)' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l boot -d 'Only kills of one boot: 0 the current one, -1 the one before, -N, or a boot id' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l top -d 'Show the N groups with the most kills of each kind' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l global -d 'Only system-wide OOMs: the kernel\'s CONSTRAINT_NONE, else a kill line saying "Out of memory", else no memory cgroup at its limit at the kill'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l memcg -d 'Only OOMs of a memory cgroup\'s limit: CONSTRAINT_MEMCG, else a kill line saying "Memory cgroup out of memory", else a cgroup at its limit'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -l json -d 'One JSON object for scripts instead of tables'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand stats" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand status" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand status" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand status" -l json -d 'One JSON object for scripts instead of text'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand status" -l check -d 'Check every page of the database first (`PRAGMA integrity_check`, every index against its table): seconds on a large store. Without it, status reads only what it reports (the daemon checks every page daily, and sets a damaged file aside)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand status" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand prune" -l max-age -d 'Delete kills older than DAYS (180 or 180d); 0: none by age [default: `max_age_days` in the configuration file, else 180]' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand prune" -l max-records -d 'Keep at most N kills, deleting the oldest; 0: no cap [default: `max_records` in the configuration file, else 100000]' -r
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand prune" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand prune" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand prune" -l dry-run -d 'Say what would be deleted, and delete nothing (the database is only read)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand prune" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand import" -l journal-dir -d 'Also read the kernel entries of the journal files in DIR (a copy of another machine\'s /var/log/journal, or `journalctl --directory` input)' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand import" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand import" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand import" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand doctor" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand doctor" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand doctor" -l json -d 'One JSON object for scripts instead of text'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand generate-assets" -l db -d 'SQLite database the daemon writes and the other commands read [default: `db` in the configuration file, else /var/lib/oomrecorder/oomrecorder.db]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand generate-assets" -l config -d 'Configuration file (only the default one may be missing) [default: /etc/oomrecorder/oomrecorder.toml]' -r -F
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand generate-assets" -s h -l help -d 'Print help'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand generate-assets" -s V -l version -d 'Print version'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "run" -d 'Run the recorder: attach to the kernel and store every OOM kill'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "list" -d 'List recorded kills, newest first'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "show" -d 'Show one recorded kill in full'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "watch" -d 'Print each new kill as it is recorded, until interrupted'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "stats" -d 'Count kills per container, pod, unit and command'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "status" -d 'Is the daemon running, what did it lose, does its count match the kernel\'s?'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "prune" -d 'Delete old kills now, as the daemon does daily'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "import" -d 'Record the kills in kernel logs (dmesg, journalctl -k, syslog, /dev/kmsg dumps)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "doctor" -d 'Check what the recorder can do on this kernel: BTF, attach point, each field'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "generate-assets" -d 'Write man pages and shell completions into DIR (for packaging)'
complete -c oomrecorder -n "__fish_oomrecorder_using_subcommand help; and not __fish_seen_subcommand_from run list show watch stats status prune import doctor generate-assets help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
