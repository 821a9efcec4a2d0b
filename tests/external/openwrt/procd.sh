# shellcheck shell=sh disable=SC3043
# Test stand-in for OpenWrt's /lib/functions/procd.sh (see README.md). State in $PROCD_STATE:
# INSTANCE.params, the parameters as set (one line each: set|append KEY 'VALUE'...);
# INSTANCE.pid, the running command's PID; INSTANCE.log, its stdout and stderr (procd's go to
# the system log). As procd does, an instance started again with the same parameters is left
# running, and one whose parameters changed is restarted.

# 'it'\''s' for it's: one shell word.
procd_quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

procd_record() {
	local _line="$1" _value
	shift
	for _value; do
		_line="$_line $(procd_quote "$_value")"
	done
	printf '%s\n' "$_line" >>"$PROCD_STATE/$procd_instance.params"
}

procd_open_instance() {
	procd_instance=${1:-instance1}
	procd_command=""
	procd_env=""
	procd_user=root
	[ -f "$PROCD_STATE/$procd_instance.params" ] &&
		mv "$PROCD_STATE/$procd_instance.params" "$PROCD_STATE/$procd_instance.params.old"
	: >"$PROCD_STATE/$procd_instance.params"
}

procd_set_param() {
	local _key="$1" _value
	shift
	procd_record "set $_key" "$@"
	case $_key in
		command | env)
			eval "procd_$_key=''"
			for _value; do
				eval "procd_$_key=\"\$procd_$_key \$(procd_quote \"\$_value\")\""
			done
			;;
		user) procd_user=$1 ;;
	esac
}

procd_append_param() {
	local _key="$1" _value
	shift
	procd_record "append $_key" "$@"
	case $_key in
		command | env)
			for _value; do
				eval "procd_$_key=\"\$procd_$_key \$(procd_quote \"\$_value\")\""
			done
			;;
	esac
}

# Starts the instance in the background, unless it runs with the same parameters: the command,
# as the user, with only the environment it was given (procd's own is nearly empty).
procd_close_instance() {
	local _pidfile="$PROCD_STATE/$procd_instance.pid" _tries=0
	if [ -f "$_pidfile" ] && kill -0 "$(cat "$_pidfile")" 2>/dev/null; then
		cmp -s "$PROCD_STATE/$procd_instance.params" "$PROCD_STATE/$procd_instance.params.old" &&
			return 0
		procd_stop "$_pidfile"
	fi
	eval "set -- $procd_env $procd_command"
	start-stop-daemon -S -m -p "$_pidfile" -c "$procd_user" -x "$(command -v env)" -- -i "$@" \
		</dev/null >>"$PROCD_STATE/$procd_instance.log" 2>&1 &
	while [ ! -s "$_pidfile" ] && [ "$_tries" -lt 50 ]; do
		sleep 0.1
		_tries=$((_tries + 1))
	done
}

# procd_send_signal SERVICE [INSTANCE|'*' [SIGNAL]]: signals the instances (default SIGHUP)
procd_send_signal() {
	local _pidfile
	for _pidfile in "$PROCD_STATE"/*.pid; do
		[ -f "$_pidfile" ] || continue
		case $2 in
			'' | '*') ;;
			*) [ "$_pidfile" = "$PROCD_STATE/$2.pid" ] || continue ;;
		esac
		kill -"${3:-HUP}" "$(cat "$_pidfile")" 2>/dev/null
	done
}

procd_add_reload_trigger() {
	local _package
	for _package; do
		printf 'reload trigger: config %s\n' "$_package" >>"$PROCD_STATE/triggers"
	done
}

# procd_running SERVICE [INSTANCE]: true if an instance runs
procd_running() {
	local _pidfile
	for _pidfile in "$PROCD_STATE"/*.pid; do
		[ -f "$_pidfile" ] && kill -0 "$(cat "$_pidfile")" 2>/dev/null && return 0
	done
	return 1
}

# procd_stop PIDFILE: stops that instance and waits (at most 10 s) for it to end
procd_stop() {
	local _pid _tries=0
	_pid=$(cat "$1")
	kill "$_pid" 2>/dev/null
	while kill -0 "$_pid" 2>/dev/null && [ "$_tries" -lt 100 ]; do
		sleep 0.1
		_tries=$((_tries + 1))
	done
	rm -f "$1"
}

# procd_kill SERVICE [INSTANCE]: stops the instances
procd_kill() {
	local _pidfile
	for _pidfile in "$PROCD_STATE"/*.pid; do
		[ -f "$_pidfile" ] && procd_stop "$_pidfile"
	done
}
