# shellcheck shell=sh disable=SC3043
# Test stand-in for OpenWrt's /lib/functions.sh (see README.md): the UCI reading functions.
# Section and option names are shell names here (letters, digits, _), as in the tested config.
# Locals start with _, as OpenWrt's do, so that they do not hide the caller's variables.

CONFIG_SECTIONS=""
CONFIG_SECTION=""

config() {
	CONFIG_SECTION=$2
	CONFIG_SECTIONS="$CONFIG_SECTIONS $2"
	eval "CONFIG_${2}_TYPE=\$1"
}

option() {
	eval "CONFIG_${CONFIG_SECTION}_${1}=\$2"
}

list() {
	local _n
	eval "_n=\${CONFIG_${CONFIG_SECTION}_${1}_LENGTH:-0}"
	_n=$((_n + 1))
	eval "CONFIG_${CONFIG_SECTION}_${1}_ITEM$_n=\$2"
	eval "CONFIG_${CONFIG_SECTION}_${1}_LENGTH=$_n"
}

# config_load PACKAGE
config_load() {
	CONFIG_SECTIONS=""
	# shellcheck source=/dev/null
	. "$IPKG_INSTROOT/etc/config/$1"
}

# config_get VARIABLE SECTION OPTION [DEFAULT]
config_get() {
	eval "$1=\${CONFIG_${2}_${3}:-\$4}"
}

# config_get_bool VARIABLE SECTION OPTION [DEFAULT]: 1 or 0
config_get_bool() {
	local _value
	config_get _value "$2" "$3" "$4"
	case $_value in
		1 | on | true | yes | enabled) _value=1 ;;
		0 | off | false | no | disabled) _value=0 ;;
		*) _value=$4 ;;
	esac
	eval "$1=\$_value"
}

# config_foreach FUNCTION TYPE: FUNCTION SECTION for each section of TYPE
config_foreach() {
	local _function="$1" _type="$2" _section _section_type
	for _section in $CONFIG_SECTIONS; do
		eval "_section_type=\$CONFIG_${_section}_TYPE"
		[ "$_section_type" = "$_type" ] && "$_function" "$_section"
	done
	return 0
}

# config_list_foreach SECTION OPTION FUNCTION: FUNCTION VALUE for each entry of the list
config_list_foreach() {
	local _section="$1" _option="$2" _function="$3" _n _i=1 _value
	eval "_n=\${CONFIG_${_section}_${_option}_LENGTH:-0}"
	while [ "$_i" -le "$_n" ]; do
		eval "_value=\$CONFIG_${_section}_${_option}_ITEM$_i"
		"$_function" "$_value"
		_i=$((_i + 1))
	done
}
