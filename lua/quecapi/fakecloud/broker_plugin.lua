-- The fake cloud's mosquitto plugin (mosquitto 2.0, plugin API v5), as C source.
-- quecapi.fakecloud.broker writes it into the run directory and compiles it
-- there with `cc -shared -fPIC` at every start of a fake cloud, so the rock
-- ships no file outside its Lua modules.
--
-- What it does, and why a plugin: Apps sign in with an empty user name and
-- the access token as password, and mosquitto's password file cannot hold an
-- empty user name ("Corrupt password file"), nor follow tokens issued a moment
-- ago. The fake cloud (nginx) rewrites a file of the valid tokens whenever it
-- issues, refreshes, revokes or expires one; the plugin reads it at every
-- connect. Beside that it keeps the broker's side of the fake's test controls:
-- it counts App connections, hands commands Apps publish to the fake's device
-- side with the token they connected with, and turns the device side's control
-- messages into broker actions (drop every App, a message for one client
-- without a subscription) that only code inside the broker can perform.
return [==[
/* The fake cloud's broker plugin: token authentication for Apps, one device
 * side account, connection counting, command forwarding, test controls.
 * Written out and compiled by quecapi.fakecloud.broker; the comments of
 * broker_plugin.lua say why it exists. Options (plugin_opt_*):
 *   tokens           file of valid tokens, "<expiry epoch s> <token>" a line
 *   stats            file this plugin rewrites: counters and connected Apps
 *                    (and "<stats>.log", a line appended at every App connect)
 *   device_user      user name of the fake's device side (plain listener only)
 *   device_password  its password
 * Apps come over the WebSocket listener with an empty user name; the device
 * side over the plain one with its own. Everything runs on mosquitto's single
 * thread. */
#define _POSIX_C_SOURCE 200809L  /* getline */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define CMD_PREFIX "q/1/d/"
#define CMD_SUFFIX "/sys_"
#define CONTROL_PREFIX "fakecloud/"

struct app {
	struct mosquitto *client;
	char *token;  /* the password it connected with */
	struct app *next;
};

static mosquitto_plugin_id_t *plugin_id;
static char *tokens_path, *stats_path, *device_user, *device_password;
static struct app *apps;  /* oldest first */
static long connects, disconnects, refused;

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* q/1/d/<channel>/sys_: the one topic an App publishes commands on. */
static int is_command_topic(const char *topic)
{
	const char *channel = topic + strlen(CMD_PREFIX);
	if(!starts_with(topic, CMD_PREFIX) || !ends_with(topic, CMD_SUFFIX)) return 0;
	if(strlen(channel) <= strlen(CMD_SUFFIX)) return 0;
	return memchr(channel, '/', strlen(channel) - strlen(CMD_SUFFIX)) == NULL;
}

/* The device side: its user name, and only over the plain listener. */
static int is_device(struct mosquitto *client)
{
	const char *user = mosquitto_client_username(client);
	return mosquitto_client_protocol(client) == mp_mqtt && user != NULL && strcmp(user, device_user) == 0;
}

static struct app *find_app(struct mosquitto *client)
{
	struct app *a;
	for(a = apps; a; a = a->next){
		if(a->client == client) return a;
	}
	return NULL;
}

static int remove_app(struct mosquitto *client)
{
	struct app **p = &apps, *a;
	while(*p){
		a = *p;
		if(a->client == client){
			*p = a->next;
			mosquitto_free(a->token);
			mosquitto_free(a);
			return 1;
		}
		p = &a->next;
	}
	return 0;
}

/* A client id on one line: bytes outside printable ASCII, spaces and '%' as %XX. */
static void write_id(FILE *f, const char *id)
{
	const unsigned char *p;
	if(id == NULL){
		fputs("-", f);
		return;
	}
	for(p = (const unsigned char *)id; *p; p++){
		if(*p <= ' ' || *p >= 0x7f || *p == '%'){
			fprintf(f, "%%%02X", *p);
		}else{
			fputc(*p, f);
		}
	}
}

/* The stats file, replaced whole (written aside, then renamed) so a reader
 * never sees half of it. Oldest App first. */
static void write_stats(void)
{
	char tmp[4096];
	FILE *f;
	struct app *a;

	if(snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path) >= (int)sizeof(tmp)) return;
	f = fopen(tmp, "w");
	if(f == NULL){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "fakecloud: cannot write %s", tmp);
		return;
	}
	fprintf(f, "connects %ld\ndisconnects %ld\nrefused %ld\n", connects, disconnects, refused);
	for(a = apps; a; a = a->next){
		fputs("client ", f);
		write_id(f, mosquitto_client_id(a->client));
		fputc('\n', f);
	}
	if(fclose(f) != 0 || rename(tmp, stats_path) != 0){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "fakecloud: cannot replace %s", stats_path);
	}
}

/* At every App connect one line more in "<stats>.log": the connect's number
 * and every App connected at that moment, the new one last. Two sessions at
 * once always show in the line of the later one's connect, however briefly
 * they overlapped (GET /_fake/broker/sessions). */
static void log_connect(void)
{
	char path[4096];
	FILE *f;
	struct app *a;

	if(snprintf(path, sizeof(path), "%s.log", stats_path) >= (int)sizeof(path)) return;
	f = fopen(path, "a");
	if(f == NULL) return;
	fprintf(f, "%ld", connects);
	for(a = apps; a; a = a->next){
		fputc(' ', f);
		write_id(f, mosquitto_client_id(a->client));
	}
	fputc('\n', f);
	fclose(f);
}

/* Counters survive a restart of the broker (the fake restarts it on demand):
 * read them back from the stats file a previous run left. */
static void read_stats(void)
{
	char line[512];
	FILE *f = fopen(stats_path, "r");
	if(f == NULL) return;
	while(fgets(line, sizeof(line), f)){
		if(sscanf(line, "connects %ld", &connects) == 1) continue;
		if(sscanf(line, "disconnects %ld", &disconnects) == 1) continue;
		(void)sscanf(line, "refused %ld", &refused);
	}
	fclose(f);
}

/* Is `password` a token of the tokens file that has not expired? The file is
 * read at every App connect: it is small and changes at every login. */
static int token_valid(const char *password)
{
	FILE *f;
	char *line = NULL, *token;
	size_t cap = 0;
	ssize_t len;
	long long exp;
	int found = 0;
	time_t now = time(NULL);

	f = fopen(tokens_path, "r");
	if(f == NULL) return 0;
	while(!found && (len = getline(&line, &cap, f)) > 0){
		if(line[len - 1] == '\n') line[--len] = '\0';
		exp = strtoll(line, &token, 10);
		if(token == line || *token != ' ') continue;
		token++;
		if(strcmp(token, password) == 0 && exp > (long long)now) found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	int protocol = mosquitto_client_protocol(ed->client);
	(void)event; (void)userdata;

	if(protocol == mp_mqtt){
		if(ed->username && ed->password && strcmp(ed->username, device_user) == 0
				&& strcmp(ed->password, device_password) == 0){
			return MOSQ_ERR_SUCCESS;
		}
		return MOSQ_ERR_AUTH;
	}
	/* An App: the user name flag set with an empty name, the token as
	 * password. mosquitto reads an empty name as none (NULL); MQTT 3.1 and
	 * 3.1.1 forbid a password without the user name flag (mosquitto closes
	 * such a connection before asking), so a password with no name is the
	 * empty name. MQTT 5 would allow it: the platform speaks 3.1.1. */
	if(protocol != mp_websockets || mosquitto_client_protocol_version(ed->client) > 4
			|| ed->username != NULL || ed->password == NULL || !token_valid(ed->password)){
		refused++;
		write_stats();
		return MOSQ_ERR_AUTH;
	}
	/* the same address may come back once a freed client's memory is reused */
	remove_app(ed->client);
	{
		struct app *a = mosquitto_calloc(1, sizeof(*a)), **last = &apps;
		if(a == NULL) return MOSQ_ERR_NOMEM;
		a->token = mosquitto_strdup(ed->password);
		if(a->token == NULL){
			mosquitto_free(a);
			return MOSQ_ERR_NOMEM;
		}
		a->client = ed->client;
		while(*last) last = &(*last)->next;
		*last = a;
	}
	connects++;
	write_stats();
	log_connect();
	return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	(void)event; (void)userdata;

	if(remove_app(ed->client)){
		disconnects++;
		write_stats();
	}
	return MOSQ_ERR_SUCCESS;
}

/* Apps may publish commands only, and never see or touch the fake's own
 * topics; the device side may do anything. */
static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	(void)event; (void)userdata;

	if(is_device(ed->client)) return MOSQ_ERR_SUCCESS;
	if(starts_with(ed->topic, CONTROL_PREFIX)) return MOSQ_ERR_ACL_DENIED;
	if(ed->access == MOSQ_ACL_WRITE && !is_command_topic(ed->topic)) return MOSQ_ERR_ACL_DENIED;
	return MOSQ_ERR_SUCCESS;
}

/* "<length>:<bytes>" */
static size_t put_field(char *out, const char *s, size_t n)
{
	int k = sprintf(out, "%zu:", n);
	memcpy(out + k, s, n);
	return (size_t)k + n;
}

/* A field written by put_field, or -1 for a malformed one. */
static long get_field(const char *payload, size_t len, size_t *pos, size_t *start)
{
	size_t n = 0, i = *pos;
	while(i < len && payload[i] >= '0' && payload[i] <= '9' && n < 100000){
		n = n * 10 + (size_t)(payload[i] - '0');
		i++;
	}
	if(i == *pos || i >= len || payload[i] != ':' || len - i - 1 < n) return -1;
	*start = i + 1;
	*pos = i + 1 + n;
	return (long)n;
}

/* An App's command goes to the device side on fakecloud/cmd as
 * "<n>:<client id><n>:<token><n>:<topic><payload>": the fake needs to know who
 * sent it (the user of the token it connected with, the client for errors),
 * which MQTT itself does not tell a subscriber. */
static void forward_command(const struct app *a, const char *topic, const void *payload, uint32_t payloadlen)
{
	const char *id = mosquitto_client_id(a->client);
	size_t size, len = 0;
	char *buf;

	if(id == NULL) id = "";
	size = 3 * 24 + strlen(id) + strlen(a->token) + strlen(topic) + payloadlen;
	buf = mosquitto_malloc(size);
	if(buf == NULL) return;
	len += put_field(buf + len, id, strlen(id));
	len += put_field(buf + len, a->token, strlen(a->token));
	len += put_field(buf + len, topic, strlen(topic));
	if(payloadlen) memcpy(buf + len, payload, payloadlen);
	len += payloadlen;
	mosquitto_broker_publish_copy(NULL, "fakecloud/cmd", (int)len, buf, 1, false, NULL);
	mosquitto_free(buf);
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	(void)event; (void)userdata;

	if(is_device(ed->client)){
		if(strcmp(ed->topic, "fakecloud/ctl/drop") == 0){
			/* every App: they all have the empty user name, which mosquitto
			 * keeps as none; the device side has its own */
			mosquitto_kick_client_by_username(NULL, false);
		}else if(strcmp(ed->topic, "fakecloud/direct") == 0){
			/* "<n>:<client id><payload>" -> q/1/u/<client id>/sys_ for that
			 * client alone, subscribed or not, as the platform's errors arrive */
			size_t pos = 0, start, topic_len;
			long n = get_field(ed->payload, ed->payloadlen, &pos, &start);
			char *id, *topic;
			if(n <= 0) return MOSQ_ERR_SUCCESS;
			id = mosquitto_malloc((size_t)n + 1);
			topic_len = (size_t)n + 16;
			topic = mosquitto_malloc(topic_len);
			if(id && topic){
				memcpy(id, (const char *)ed->payload + start, (size_t)n);
				id[n] = '\0';
				snprintf(topic, topic_len, "q/1/u/%s/sys_", id);
				mosquitto_broker_publish_copy(id, topic, (int)(ed->payloadlen - pos),
					(const char *)ed->payload + pos, 0, false, NULL);
			}
			mosquitto_free(id);
			mosquitto_free(topic);
		}
		return MOSQ_ERR_SUCCESS;
	}
	if(is_command_topic(ed->topic)){
		struct app *a = find_app(ed->client);
		if(a) forward_command(a, ed->topic, ed->payload, ed->payloadlen);
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	int i;
	(void)userdata;

	for(i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "tokens") == 0) tokens_path = options[i].value;
		else if(strcmp(options[i].key, "stats") == 0) stats_path = options[i].value;
		else if(strcmp(options[i].key, "device_user") == 0) device_user = options[i].value;
		else if(strcmp(options[i].key, "device_password") == 0) device_password = options[i].value;
	}
	if(!tokens_path || !stats_path || !device_user || !device_password){
		mosquitto_log_printf(MOSQ_LOG_ERR,
			"fakecloud: plugin_opt_tokens, _stats, _device_user and _device_password are required");
		return MOSQ_ERR_INVAL;
	}
	plugin_id = identifier;
	read_stats();
	write_stats();
	mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata; (void)options; (void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	while(apps) remove_app(apps->client);
	return MOSQ_ERR_SUCCESS;
}
]==]
