#!/usr/bin/env bash
# Installs LocalStack for host mode (no Docker engine) from package registries only:
#   <home>/venv  localstack-core (PyPI) with every dependency pinned in requirements.lock
#   <home>/lib   what LocalStack's DynamoDB provider looks for under <FILESYSTEM_ROOT>/var/lib/localstack/lib:
#                dynamodb-local/2/ (DynamoDB Local from Maven Central, its native sqlite4java libs, a
#                launcher jar and a javaagent jar) and java/21 (a link to the system JDK 17+).
# <home> is .cache/localstack at the repository root (FT_LOCALSTACK_HOME overrides it).
# Idempotent: a stamp of this script and the lock skips everything once installed (a few ms).
# Needs: python3 >= 3.11 (PYTHON overrides), java >= 17 (JAVA_HOME or PATH), mvn. Nothing else is fetched:
# LocalStack's own installers, which download from outside the registries, never run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
home="${FT_LOCALSTACK_HOME:-$root/.cache/localstack}"
venv="$home/venv"
lib="$home/lib"
ddb="$lib/dynamodb-local/2"
lock="$here/requirements.lock"
stamp="$home/.installed"

LOCALSTACK_VERSION=4.13.1   # 4.14.0 uses Python 3.12-only syntax; this machine and CI have 3.11.
DYNAMODB_LOCAL_VERSION=2.6.1 # runs on Java 17; LocalStack's own download is "latest 2.x/3.x".
BYTE_BUDDY_AGENT_VERSION=1.17.5

want="$(cat "$0" "$lock" | sha256sum | cut -c1-16)"
installed() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" && -f "$ddb/DynamoDBLocal.jar" &&
    -x "$lib/java/21/bin/java" ]]
}
installed && exit 0

log() { printf '[localstack install +%ss] %s\n' "$SECONDS" "$*" >&2; }
mkdir -p "$home"
# Two test runs may start at once: the second waits here, then finds everything installed.
exec 9>"$home/.install.lock"
if ! flock -n 9; then
  log "another install is running; waiting for it"
  flock 9
fi
installed && exit 0
log "installing LocalStack $LOCALSTACK_VERSION for host mode into $home"

python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || {
  log "LocalStack needs Python 3.11 or newer (found: $("$python" --version 2>&1)); set PYTHON to choose one"
  exit 1
}
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$java_bin" >/dev/null || {
  log "DynamoDB Local needs a Java 17+ runtime (JAVA_HOME or PATH), e.g. apt-get install openjdk-17-jre-headless"
  exit 1
}
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v "$java_bin")")")")"
"$java_home/bin/java" -version 2>&1 | head -1 | grep -Eq '"(1[7-9]|[2-9][0-9])' || {
  log "DynamoDB Local needs Java 17 or newer; found: $("$java_home/bin/java" -version 2>&1 | head -1)"
  exit 1
}
command -v mvn >/dev/null || { log "Maven is needed once, to fetch DynamoDB Local (apt-get install maven)"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. localstack-core into a project-local venv.
venv_ok() {
  [[ "$(cat "$venv/.lock-hash" 2>/dev/null)" == "$LOCALSTACK_VERSION $(sha256sum <"$lock")" ]] &&
    "$venv/bin/python" -c "import localstack.runtime.main, localstack.services.dynamodb.provider" 2>/dev/null
}
if ! venv_ok; then
  log "creating $venv ($("$python" --version))"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  log "pip: localstack-core==$LOCALSTACK_VERSION and $(grep -c . "$lock") pinned dependencies (the 'runtime' extra)"
  # --no-deps: exactly the lock, nothing resolved afresh (newer cbor2, pyOpenSSL and cryptography releases
  # break 4.13.1); pip check below proves the lock is complete.
  "$venv/bin/pip" install --quiet --disable-pip-version-check --progress-bar off --no-deps \
    -r "$lock" "localstack-core==$LOCALSTACK_VERSION"
  "$venv/bin/pip" check >&2
  # 4.13.1 evaluates `threading.Lock | None` at import time, which only Python 3.13 accepts; postponed
  # annotations make it a string, as upstream intended.
  api="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/localstack/packages/api.py"
  grep -q "^from __future__ import annotations" "$api" || sed -i '1i from __future__ import annotations  # patched by install.sh' "$api"
  "$venv/bin/python" -c "import localstack.runtime.main, localstack.services.dynamodb.provider" ||
    { log "localstack-core does not import; see the error above"; exit 1; }
  echo "$LOCALSTACK_VERSION $(sha256sum <"$lock")" >"$venv/.lock-hash"
  log "venv ready"
fi

# 2. DynamoDB Local and a javaagent from Maven Central, where LocalStack's installer would put its download.
if [[ ! -f "$ddb/DynamoDBLocal.jar" || ! -f "$ddb/.version-$DYNAMODB_LOCAL_VERSION" ]]; then
  log "mvn: DynamoDB Local $DYNAMODB_LOCAL_VERSION with its dependencies and sqlite4java natives"
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>dynamodb-local-fetch</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>com.amazonaws</groupId><artifactId>DynamoDBLocal</artifactId><version>$DYNAMODB_LOCAL_VERSION</version></dependency>
    <dependency><groupId>net.bytebuddy</groupId><artifactId>byte-buddy-agent</artifactId><version>$BYTE_BUDDY_AGENT_VERSION</version></dependency>
  </dependencies>
</project>
POM
  # DynamoDBLocal's pom names sqlite4java's linux/macOS/windows natives (.so/.dylib/.dll) as dependencies.
  (cd "$work" && mvn -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory="$work/lib" >"$work/mvn.log" 2>&1) ||
    { tail -40 "$work/mvn.log" >&2; log "mvn failed (its output is above)"; exit 1; }
  rm -rf "$ddb" && mkdir -p "$ddb/DynamoDBLocal_lib"
  mv "$work"/lib/byte-buddy-agent-*.jar "$work/agent.jar"
  cp "$work"/lib/*.jar "$ddb/DynamoDBLocal_lib/"
  # sqlite4java loads libsqlite4java-linux-amd64.so from java.library.path, without Maven's version suffix.
  native="$(ls "$work"/lib/libsqlite4java-linux-amd64-*.so 2>/dev/null | head -1)"
  [[ -n "$native" ]] || { log "sqlite4java's linux-amd64 native library is missing from DynamoDB Local's dependencies"; exit 1; }
  cp "$native" "$ddb/DynamoDBLocal_lib/libsqlite4java-linux-amd64.so"
  for f in "$work"/lib/libsqlite4java-linux-i386-*.so; do
    [[ -f "$f" ]] && cp "$f" "$ddb/DynamoDBLocal_lib/libsqlite4java-linux-i386.so"
  done

  # LocalStack runs `java -javaagent:<dir>/ddb-local-loader-0.1.jar -Djava.library.path=<dir>/DynamoDBLocal_lib
  # -jar <dir>/DynamoDBLocal.jar`. The distribution zip's DynamoDBLocal.jar names its dependencies in its
  # manifest; Maven's files are named differently, so DynamoDBLocal.jar here is a manifest-only launcher
  # whose Class-Path lists them (written with Python's zipfile: no JDK tools needed, a JRE will do).
  (cd "$ddb" && "$python" - DynamoDBLocal.jar DynamoDBLocal_lib/*.jar <<'PY'
import sys, zipfile
out, jars = sys.argv[1], sorted(sys.argv[2:])
def wrap(line):  # manifest lines: at most 72 bytes, continued on lines that start with a space
    return "\r\n".join([line[:72]] + [" " + line[i:i + 71] for i in range(72, len(line), 71)])
manifest = "\r\n".join([
    "Manifest-Version: 1.0",
    "Main-Class: com.amazonaws.services.dynamodbv2.local.main.ServerRunner",
    wrap("Class-Path: " + " ".join(jars)),
]) + "\r\n\r\n"
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("META-INF/MANIFEST.MF", manifest)
PY
  )
  # LocalStack's own agent (it lifts DynamoDB Local's 20-GSI limit) is published outside the registries.
  # Any agent jar satisfies -javaagent: Byte Buddy's premain only keeps the Instrumentation handle, so
  # DynamoDB Local runs unpatched (AWS's default quota is 20 GSIs per table anyway).
  cp "$work/agent.jar" "$ddb/ddb-local-loader-0.1.jar"
  touch "$ddb/.version-$DYNAMODB_LOCAL_VERSION"
  log "DynamoDB Local ready in $ddb"
fi

# 3. Java: LocalStack would download a Java 21 for DynamoDB Local; its installer only checks for
# <lib>/java/21/bin/java, so the system JDK (17+, which DynamoDB Local 2.x needs) stands in.
mkdir -p "$lib/java"
ln -sfn "$java_home" "$lib/java/21"

# 4. Smoke test of the DynamoDB Local install alone (catches a broken classpath or native lib early).
log "checking that DynamoDB Local starts on $("$java_home/bin/java" -version 2>&1 | head -1)"
"$java_home/bin/java" -javaagent:"$ddb/ddb-local-loader-0.1.jar" -Djava.library.path="$ddb/DynamoDBLocal_lib" \
  -jar "$ddb/DynamoDBLocal.jar" -help >"$work/ddb-help.txt" 2>&1 ||
  { cat "$work/ddb-help.txt" >&2; log "DynamoDB Local does not start"; exit 1; }

# The layout before run directories per instance (filesystem/ with the libraries inside) is unused now.
rm -rf "$home/filesystem"

echo "$want" >"$stamp"
log "installed ($(du -sh "$home" 2>/dev/null | cut -f1) in $home)"
