defmodule Keyring.Gateway.MCP do
  @moduledoc false
  # MCP methods on POST /mcp, after the transport checks in Rust
  # (keyring_gateway::mcp). Sessionless and JSON-only:
  #
  # - legacy (2025-03-26 / 2025-06-18 / 2025-11-25): initialize, ping,
  #   tools/list, tools/call (and server/discover);
  # - modern (2026-07-28): server/discover, tools/list, tools/call, every
  #   result with resultType, list results cacheable (ttlMs, cacheScope);
  #   an unknown method is HTTP 404 with -32601.
  #
  # Tools are Keyring.Gateway.Operations named keyring_<operation>; a tool that
  # changes state needs the bearer token, like its REST route.

  alias Keyring.Gateway.{Conn, Operations, Router}

  @legacy ["2025-11-25", "2025-06-18", "2025-03-26"]
  @modern "2026-07-28"
  @method_not_found -32601
  @invalid_params -32602

  @instructions """
  Keyring is a runtime for meshes of autonomous nodes. This server is one node.
  Read the mesh with keyring_status, keyring_presence, keyring_mesh and keyring_keyrings;
  store and read content with keyring_blob_put / keyring_blob_get (content-addressed by BLAKE3);
  call handles that keyring members exposed with keyring_rpc_call (the peer decides who may call);
  run registered tasks with keyring_task_route. Tools that change state need the node's bearer token.
  """

  @spec handle(Conn.t()) :: term()
  def handle(%Conn{mcp: mcp, body: {:json, message}} = conn) do
    params = Map.get(message, "params") || %{}
    modern? = mcp.era == :modern

    case answer(mcp.method, params, conn, modern?) do
      {:result, result} ->
        result = if modern?, do: Map.put(result, "resultType", "complete"), else: result
        Conn.json(conn, 200, %{"jsonrpc" => "2.0", "id" => mcp.id, "result" => result})

      {:error, code, message} ->
        status = if modern? and code == @method_not_found, do: 404, else: 200
        error = %{"code" => code, "message" => message}
        Conn.json(conn, status, %{"jsonrpc" => "2.0", "id" => mcp.id, "error" => error})
    end
  end

  defp answer("initialize", params, _conn, false) do
    requested = Map.get(params, "protocolVersion")
    version = if requested in @legacy, do: requested, else: hd(@legacy)

    {:result,
     %{
       "protocolVersion" => version,
       "capabilities" => %{"tools" => %{"listChanged" => false}},
       "serverInfo" => server_info(),
       "instructions" => @instructions
     }}
  end

  defp answer("ping", _params, _conn, false), do: {:result, %{}}

  defp answer("server/discover", _params, _conn, _modern?) do
    {:result,
     %{
       "supportedVersions" => [@modern | @legacy],
       "capabilities" => %{"tools" => %{"listChanged" => false}},
       "instructions" => @instructions,
       "_meta" => %{"io.modelcontextprotocol/serverInfo" => server_info()},
       "ttlMs" => 60_000,
       "cacheScope" => "private"
     }}
  end

  defp answer("tools/list", _params, _conn, modern?) do
    result = %{"tools" => tools()}

    result =
      if modern?,
        do: Map.merge(result, %{"ttlMs" => 60_000, "cacheScope" => "private"}),
        else: result

    {:result, result}
  end

  defp answer("tools/call", params, conn, _modern?) do
    with name when is_binary(name) <- Map.get(params, "name"),
         "keyring_" <> op_name <- name,
         {:ok, op} <- Operations.fetch(op_name),
         true <- Map.get(op, :mcp, true) do
      args = Map.get(params, "arguments") || %{}
      {:result, call_result(Operations.run(op.name, args, Router.ctx(conn)))}
    else
      _ -> {:error, @invalid_params, "unknown tool #{inspect(Map.get(params, "name"))}"}
    end
  end

  defp answer(method, _params, _conn, _modern?),
    do: {:error, @method_not_found, "method not found: #{method}"}

  defp call_result({:ok, _status, result}) do
    %{
      "content" => [%{"type" => "text", "text" => Keyring.Gateway.JSON.encode!(result)}],
      "structuredContent" => result,
      "isError" => false
    }
  end

  defp call_result({:error, status, code, message}) do
    error = %{"error" => %{"code" => code, "message" => message, "status" => status}}

    %{
      "content" => [%{"type" => "text", "text" => "#{code}: #{message}"}],
      "structuredContent" => error,
      "isError" => true
    }
  end

  @doc "The tool list (operations exposed to MCP)."
  def tools do
    for op <- Operations.all(), Map.get(op, :mcp, true) do
      %{
        "name" => "keyring_" <> op.name,
        "description" =>
          op.description <> if(op.mutating, do: " Needs the bearer token.", else: ""),
        "inputSchema" => Operations.schema(op),
        "annotations" => %{
          "readOnlyHint" => not op.mutating,
          "openWorldHint" => op.name in ["rpc_call", "task_route", "keyring_join"]
        }
      }
    end
  end

  defp server_info,
    do: %{"name" => "keyring", "version" => to_string(Application.spec(:keyring, :vsn) || "dev")}
end
