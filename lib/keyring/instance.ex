defmodule Keyring.Instance do
  @moduledoc false
  # Per-instance lookups. Hot-path handles (the key pair, the store database)
  # live in :persistent_term so callers use them from their own process,
  # without a GenServer hop; processes are named after the instance.

  @type t :: atom()

  @spec child_name(t(), module()) :: atom()
  def child_name(instance, module) do
    Module.concat(instance, module |> Module.split() |> List.last())
  end

  @spec put(t(), atom(), term()) :: :ok
  def put(instance, key, value), do: :persistent_term.put({Keyring, instance, key}, value)

  @spec erase(t(), atom()) :: :ok
  def erase(instance, key) do
    :persistent_term.erase({Keyring, instance, key})
    :ok
  end

  @spec get(t(), atom(), term()) :: term()
  def get(instance, key, default), do: :persistent_term.get({Keyring, instance, key}, default)

  @spec fetch!(t(), atom()) :: term()
  def fetch!(instance, key) do
    case :persistent_term.get({Keyring, instance, key}, :undefined) do
      :undefined ->
        raise ArgumentError,
              "no Keyring instance #{inspect(instance)} is running (missing #{key}); " <>
                "start one with {Keyring, name: #{inspect(instance)}} or Keyring.start_link/1"

      value ->
        value
    end
  end
end
