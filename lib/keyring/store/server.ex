defmodule Keyring.Store.Server do
  @moduledoc false
  # Owns the store's lifetime: opens the redb database (and its group-commit
  # writer thread) at start, publishes the handle for callers in
  # :persistent_term, and closes it on shutdown (queued writes finish first).
  use GenServer

  require Logger

  alias Keyring.{Instance, Native}

  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts,
      name: Instance.child_name(opts[:keyring], Keyring.Store)
    )
  end

  @doc false
  def open(data_dir, store_opts) do
    path = Path.join(data_dir, "store")

    case Native.store_open(path, store_opts[:cache_bytes], store_opts[:read_threads]) do
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
        Instance.put(opts[:keyring], :store, handle)
        log_opened(opts[:keyring], opts[:data_dir], handle)
        {:ok, %{keyring: opts[:keyring], handle: handle}}

      {:error, reason} ->
        {:stop, reason}
    end
  end

  defp log_opened(keyring, data_dir, handle) do
    case Native.store_stats(handle) do
      {:ok, {{blobs, bytes, file_bytes}, _, _}} ->
        Logger.info(
          "Keyring #{inspect(keyring)}: store #{Path.join(data_dir, "store")}: " <>
            "#{blobs} blobs, #{bytes} bytes (file #{file_bytes} bytes)"
        )

      {:error, _} ->
        :ok
    end
  end

  @impl GenServer
  def terminate(_reason, %{keyring: keyring, handle: handle}) do
    Instance.erase(keyring, :store)
    Native.store_close(handle)
  end
end
