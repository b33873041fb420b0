#!/usr/bin/env bash
# Installs LocalStack for host mode (no Docker engine) into .cache/localstack, from package registries
# only: localstack-core from PyPI into a project-local venv, DynamoDB Local from Maven Central, and
# the system JDK (17+) for it. Idempotent: a stamp of this script's hash skips work on later runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
home="$root/.cache/localstack"
venv="$home/venv"
fs="$home/filesystem"
libs="$fs/var/lib/localstack/lib"
ddb="$libs/dynamodb-local/2"
stamp="$home/.installed"

LOCALSTACK_VERSION=4.13.1 # 4.14 uses Python 3.12-only syntax; this machine and CI have 3.11.
DYNAMODB_LOCAL_VERSION=2.6.1

want="$(sha256sum "$0" | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" && -f "$ddb/DynamoDBLocal.jar" ]]; then
  exit 0
fi
log() { printf '[localstack install] %s\n' "$*" >&2; }
mkdir -p "$home"

python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"' || {
  log "LocalStack needs Python 3.11 or newer on PATH (set PYTHON to choose one)"; exit 1; }
command -v java >/dev/null || { log "DynamoDB Local needs a Java 17+ runtime on PATH (e.g. apt-get install openjdk-17-jre-headless)"; exit 1; }
command -v mvn >/dev/null || { log "Maven is needed once, to fetch DynamoDB Local (apt-get install maven)"; exit 1; }

lock="$root/local/localstack/requirements.lock"
if ! "$venv/bin/python" -c "import localstack.runtime.main" 2>/dev/null ||
  ! "$venv/bin/pip" show localstack-core 2>/dev/null | grep -q "^Version: $LOCALSTACK_VERSION$"; then
  log "creating $venv with localstack-core $LOCALSTACK_VERSION (PyPI)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  # The lock pins every dependency: newer cbor2, pyOpenSSL and cryptography releases break 4.13.1.
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$lock" "localstack-core==$LOCALSTACK_VERSION"
  # 4.13.1 evaluates `threading.Lock | None` at import, which only Python 3.13 accepts; postponed
  # annotations make it a string, as upstream intended.
  api="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/localstack/packages/api.py"
  grep -q "^from __future__ import annotations" "$api" || sed -i '1i from __future__ import annotations  # patched by install.sh' "$api"
  "$venv/bin/python" -c "import localstack.runtime.main, localstack.services.dynamodb.provider" ||
    { log "localstack-core does not import; see the error above"; exit 1; }
fi

if [[ ! -f "$ddb/DynamoDBLocal.jar" ]]; then
  log "fetching DynamoDB Local $DYNAMODB_LOCAL_VERSION and its dependencies (Maven Central)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>dynamodb-local-fetch</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>com.amazonaws</groupId><artifactId>DynamoDBLocal</artifactId><version>$DYNAMODB_LOCAL_VERSION</version></dependency>
  </dependencies>
</project>
POM
  (cd "$work" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory="$work/lib")
  rm -rf "$ddb" && mkdir -p "$ddb/DynamoDBLocal_lib"
  cp "$work"/lib/*.jar "$ddb/DynamoDBLocal_lib/"
  # sqlite4java looks its native library up without the version suffix Maven gives it.
  cp "$work"/lib/libsqlite4java-linux-amd64-*.so "$ddb/DynamoDBLocal_lib/libsqlite4java-linux-amd64.so"
  cp "$work"/lib/libsqlite4java-linux-i386-*.so "$ddb/DynamoDBLocal_lib/libsqlite4java-linux-i386.so" 2>/dev/null || true

  # LocalStack runs `java -javaagent:<agent> -jar DynamoDBLocal.jar`. The distribution's jar names its
  # dependencies in its manifest; Maven's files are named differently, so DynamoDBLocal.jar here is a
  # manifest-only launcher whose Class-Path lists them.
  # Manifest lines are limited to 72 bytes; longer values continue on lines that start with a space.
  (cd "$ddb" && python3 - "$work/manifest.txt" DynamoDBLocal_lib/*.jar <<'PY'
import sys
out, jars = sys.argv[1], sys.argv[2:]
line = "Class-Path: " + " ".join(jars)
chunks = [line[:72]] + [" " + line[i:i + 71] for i in range(72, len(line), 71)]
with open(out, "w") as f:
    f.write("Main-Class: com.amazonaws.services.dynamodbv2.local.main.ServerRunner\n")
    f.write("\n".join(chunks) + "\n")
PY
  )
  (cd "$work" && mkdir -p empty && jar cfm "$ddb/DynamoDBLocal.jar" manifest.txt -C empty .)

  # LocalStack's agent (a patch allowing more than 20 GSIs) comes from outside the registries; the
  # platform needs no such tables, so a no-op agent stands in for it.
  mkdir -p "$work/agent/noop"
  cat >"$work/agent/noop/Agent.java" <<'JAVA'
package noop;
public final class Agent {
  public static void premain(String args) {}
}
JAVA
  (cd "$work/agent" && javac -d classes noop/Agent.java && printf 'Premain-Class: noop.Agent\n' >manifest.txt &&
    jar cfm "$ddb/ddb-local-loader-0.1.jar" manifest.txt -C classes .)
fi

# LocalStack wants its own Java 21 for DynamoDB Local (downloaded from outside the registries). DynamoDB
# Local 2.x runs on 17+, so the system JDK stands in: LocalStack checks for <dir>/bin/java.
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
"$java_home/bin/java" -version 2>&1 | head -1 | grep -Eq '"(1[7-9]|[2-9][0-9])' || {
  log "DynamoDB Local needs Java 17 or newer; found: $("$java_home/bin/java" -version 2>&1 | head -1)"; exit 1; }
mkdir -p "$libs/java"
ln -sfn "$java_home" "$libs/java/21"

echo "$want" >"$stamp"
log "installed in $home"
