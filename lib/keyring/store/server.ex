defmodule Keyring.Store.Server do
  @moduledoc false
  # Owns the store's lifetime: opens it (the index, its writer, reader and
  # ingest threads) at start, publishes the handle for callers in
  # :persistent_term, closes it on shutdown (queued writes finish first),
  # and runs GC every `gc_interval` ms when that is set.
  use GenServer

  require Logger

  alias Keyring.{Instance, Native}
  alias Keyring.Store.GC

  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts,
      name: Instance.child_name(opts[:instance], Keyring.Store)
    )
  end

  @doc false
  def open(data_dir, store_opts) do
    path = Path.join(data_dir, "store")

    case Native.store_open(
           path,
           store_opts[:cache_bytes],
           store_opts[:read_threads],
           store_opts[:ingest_threads]
         ) do
      {:ok, handle} -> {:ok, handle}
      {:error, reason} -> {:error, {:store, reason}}
    end
  end

  @doc false
  def close(handle), do: Native.store_close(handle)

  @impl GenServer
  def init(opts) do
    # Keyring.start_link/1 opened the store; after a restart of this process
    # that handle is closed and the store is opened again.
    handle =
      case opts[:handle] && Native.store_stats(opts[:handle]) do
        {:ok, _} -> {:ok, opts[:handle]}
        _ -> open(opts[:data_dir], opts)
      end

    case handle do
      {:ok, handle} ->
        Process.flag(:trap_exit, true)
        Instance.put(opts[:instance], :store, handle)
        log_opened(opts[:instance], opts[:data_dir], handle)
        state = %{instance: opts[:instance], handle: handle, gc: nil, opts: opts}
        {:ok, schedule_gc(state)}

      {:error, reason} ->
        {:stop, reason}
    end
  end

  @impl GenServer
  def handle_info(:gc, %{gc: nil, handle: handle, opts: opts} = state) do
    {pid, ref} = spawn_monitor(fn -> exit({:gc, GC.run(handle, opts[:gc_budget], :infinity)}) end)
    {:noreply, %{state | gc: {pid, ref}}}
  end

  def handle_info({:DOWN, ref, :process, _, result}, %{gc: {_, ref}} = state) do
    case result do
      {:gc, {:ok, %{blobs: 0, partials: 0, orphans: 0}}} ->
        :ok

      {:gc, {:ok, t}} ->
        Logger.info(
          "Keyring #{inspect(state.instance)}: GC deleted #{t.blobs} blobs, " <>
            "#{t.partials} partial blobs (#{t.bytes} bytes) and #{t.orphans} orphaned files"
        )

      other ->
        Logger.warning("Keyring #{inspect(state.instance)}: GC failed: #{inspect(other)}")
    end

    {:noreply, schedule_gc(%{state | gc: nil})}
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp schedule_gc(%{opts: opts} = state) do
    if interval = opts[:gc_interval], do: Process.send_after(self(), :gc, interval)
    state
  end

  defp log_opened(instance, data_dir, handle) do
    case Native.store_stats(handle) do
      {:ok, {{blobs, bytes, file_bytes, partials, _, _}, _, _, _}} ->
        Logger.info(
          "Keyring #{inspect(instance)}: store #{Path.join(data_dir, "store")}: " <>
            "#{blobs} blobs, #{bytes} bytes (index #{file_bytes} bytes), #{partials} partial"
        )

      {:error, _} ->
        :ok
    end
  end

  @impl GenServer
  def terminate(_reason, %{instance: instance, handle: handle, gc: gc}) do
    if gc, do: Process.exit(elem(gc, 0), :kill)
    Instance.erase(instance, :store)
    Native.store_close(handle)
  end
end
