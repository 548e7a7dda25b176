defmodule Keyring.Gateway.Handler do
  @moduledoc false
  # Runs one dynamic request in its own process: MCP or REST, and a 500 JSON
  # error for anything that raises, so a bug answers the client instead of
  # leaving it to the gateway's 504.

  require Logger
  alias Keyring.Gateway.{Conn, MCP, Router}

  @spec run(map(), map()) :: term()
  def run(request, ctx) do
    conn = Conn.new(request, ctx)

    try do
      if conn.mcp, do: MCP.handle(conn), else: Router.handle(conn)
    rescue
      e -> crashed(conn, Exception.format(:error, e, __STACKTRACE__))
    catch
      kind, reason -> crashed(conn, Exception.format(kind, reason, __STACKTRACE__))
    end
  end

  defp crashed(conn, text) do
    Logger.error("[Keyring.Gateway] #{conn.method} #{conn.path} crashed: #{text}")
    Conn.error(conn, 500, "internal_error", "the handler failed; see the node's log")
  end
end
