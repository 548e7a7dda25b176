defmodule Keyring.Store.Refs do
  @moduledoc false
  # The refs functions of Keyring.Store (documented there).

  alias Keyring.{Instance, Native}
  alias Keyring.Native.Reply

  @max_name 1024
  @max_value 64 * 1024
  @timeout 60_000

  def put_ref(name, value, opts) when is_binary(name) and is_binary(value) do
    opts = Keyword.validate!(opts, instance: Keyring, timeout: @timeout)
    handle = handle(opts)

    # Checked here too, so an oversized value is refused before it is copied
    # on a normal scheduler.
    cond do
      byte_size(name) > @max_name -> {:error, {:too_large, "ref name"}}
      byte_size(value) > @max_value -> {:error, {:too_large, "ref value"}}
      true -> Reply.call(&Native.store_put_ref(handle, &1, name, value), opts[:timeout])
    end
  end

  def put_ref(name, value, _opts),
    do: raise(ArgumentError, "ref name and value must be binaries: #{inspect({name, value})}")

  def get_ref(name, opts) when is_binary(name) do
    opts = Keyword.validate!(opts, instance: Keyring)

    case Native.store_get_ref(handle(opts), name) do
      {:ok, nil} -> {:error, :not_found}
      other -> other
    end
  end

  def delete_ref(name, opts) when is_binary(name) do
    opts = Keyword.validate!(opts, instance: Keyring, timeout: @timeout)
    handle = handle(opts)

    if byte_size(name) > @max_name,
      do: {:ok, false},
      else: Reply.call(&Native.store_delete_ref(handle, &1, name), opts[:timeout])
  end

  def list_refs(prefix, opts) when is_binary(prefix) do
    opts = Keyword.validate!(opts, instance: Keyring, limit: 10_000)
    Native.store_list_refs(handle(opts), prefix, opts[:limit])
  end

  defp handle(opts), do: Instance.fetch!(opts[:instance], :store)
end
