defmodule Keyring.Gateway.Server do
  @moduledoc false
  # Owns the native gateway (keyring_gateway on its own tokio runtime): every
  # dynamic request arrives here as {:keyring_gateway, request} and runs in a
  # process of its own (the gateway bounds how many wait at once). Publishes
  # the handle and URL for Keyring.Gateway and the event bridge.

  use GenServer
  require Logger

  alias Keyring.{Instance, Native}
  alias Keyring.Gateway.{Handler, Token}

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: name(opts[:instance]))

  # <instance>.Gateway (child_name keeps the last segment only, and Server is Store's).
  def name(instance), do: Instance.child_name(instance, Keyring.Gateway)

  @impl GenServer
  def init(opts) do
    instance = opts[:instance]
    conf = opts[:gateway]

    with {:ok, token} <- token(conf, opts[:data_dir]),
         {:ok, page} <- page(conf),
         {:ok, gw} <- Native.gateway_start(nif_options(conf, token), page) do
      Process.flag(:trap_exit, true)
      addr = Native.gateway_addr(gw)
      url = "http://#{display(addr)}/"
      Instance.put(instance, :gateway, %{handle: gw, url: url, token: token})
      ctx = %{instance: instance, gateway: gw, config: %{url: url}}
      {:ok, %{instance: instance, gateway: gw, ctx: ctx}}
    else
      {:error, reason} -> {:stop, {:gateway, reason}}
    end
  end

  @impl GenServer
  def handle_info({:keyring_gateway, request}, state) do
    ctx = state.ctx
    spawn(fn -> Handler.run(request, ctx) end)
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl GenServer
  def terminate(_reason, state) do
    Instance.erase(state.instance, :gateway)
    Native.gateway_close(state.gateway)
  end

  defp token(conf, data_dir) do
    case conf[:token] do
      nil -> Token.load_or_create(data_dir)
      token when is_binary(token) -> {:ok, token}
    end
  end

  defp page(conf) do
    path = conf[:page] || Path.join(:code.priv_dir(:keyring), "gateway/index.html")

    case File.read(path) do
      {:ok, html} -> {:ok, html}
      {:error, reason} -> {:error, {:page, path, reason}}
    end
  end

  defp nif_options(conf, token) do
    %{
      bind: bind(conf[:bind], conf[:port]),
      token: token,
      allow_public_bind: conf[:public],
      allowed_hosts: conf[:allowed_hosts],
      allowed_origins: conf[:allowed_origins],
      max_body: conf[:max_body],
      max_upload: conf[:max_upload],
      max_connections: conf[:max_connections],
      max_sse_clients: conf[:max_sse_clients],
      max_in_flight: conf[:max_in_flight],
      response_timeout_ms: conf[:response_timeout],
      body_idle_timeout_ms: conf[:body_idle_timeout],
      header_timeout_ms: conf[:header_timeout],
      keepalive_ms: conf[:keepalive],
      sse_stall_timeout_ms: conf[:sse_stall_timeout],
      replay_events: conf[:replay_events],
      replay_bytes: conf[:replay_bytes],
      threads: conf[:threads]
    }
  end

  defp bind(host, port) do
    if String.contains?(host, ":"), do: "[#{host}]:#{port}", else: "#{host}:#{port}"
  end

  # A wildcard bind is reached on loopback from this machine.
  defp display("0.0.0.0:" <> port), do: "127.0.0.1:" <> port
  defp display("[::]:" <> port), do: "[::1]:" <> port
  defp display(addr), do: addr
end
