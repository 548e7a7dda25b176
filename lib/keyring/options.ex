defmodule Keyring.Options do
  @moduledoc false
  # One options schema per subsystem drives both validation and the docs
  # table (the habit of Broadway's and Finch's NimbleOptions schemas, which
  # are hex packages: this is the small part of it Keyring needs).
  #
  # A schema is a keyword list `key => spec`, where spec is a keyword list:
  #   type:    :pos_integer | :non_neg_integer | :integer | :boolean | :string
  #            | :atom | :keyword | :any | {:fun, arity} | {:in, [values]}
  #            | {:or, [types]} | {:list, type} | :address
  #   default: value (absent = the option is optional with no default)
  #   doc:     one line for the docs table
  #
  # validate!/3 raises ArgumentError naming the option (and the subsystem)
  # for an unknown key or a value of the wrong type, and returns the options
  # with defaults filled in.

  @type schema :: keyword(keyword())

  @spec validate!(keyword(), schema(), String.t()) :: keyword()
  def validate!(opts, schema, where) when is_list(opts) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "#{where} options must be a keyword list, got: #{inspect(opts)}")

    for {key, _} <- opts, not Keyword.has_key?(schema, key) do
      known = schema |> Keyword.keys() |> Enum.map_join(", ", &inspect/1)
      raise ArgumentError, "unknown #{where} option #{inspect(key)} (known: #{known})"
    end

    Enum.reduce(schema, opts, fn {key, spec}, acc ->
      case Keyword.fetch(acc, key) do
        {:ok, value} ->
          check!(value, spec[:type], key, where)
          acc

        :error ->
          if Keyword.has_key?(spec, :default),
            do: Keyword.put(acc, key, spec[:default]),
            else: acc
      end
    end)
  end

  def validate!(opts, _schema, where),
    do: raise(ArgumentError, "#{where} options must be a keyword list, got: #{inspect(opts)}")

  defp check!(value, type, key, where) do
    unless valid?(value, type) do
      raise ArgumentError,
            "#{where} option #{inspect(key)} must be #{describe(type)}, got: #{inspect(value)}"
    end
  end

  defp valid?(v, :pos_integer), do: is_integer(v) and v > 0
  defp valid?(v, :non_neg_integer), do: is_integer(v) and v >= 0
  defp valid?(v, :integer), do: is_integer(v)
  defp valid?(v, :boolean), do: is_boolean(v)
  defp valid?(v, :string), do: is_binary(v)
  defp valid?(v, :atom), do: is_atom(v)
  defp valid?(v, :keyword), do: Keyword.keyword?(v)
  defp valid?(_v, :any), do: true
  defp valid?(v, {:fun, arity}), do: is_function(v, arity)
  defp valid?(v, {:in, values}), do: v in values
  defp valid?(v, {:or, types}), do: Enum.any?(types, &valid?(v, &1))
  defp valid?(v, {:list, type}), do: is_list(v) and Enum.all?(v, &valid?(&1, type))
  defp valid?(v, :address), do: is_binary(v) and match?({:ok, _}, parse_address(v))

  defp describe(:pos_integer), do: "a positive integer"
  defp describe(:non_neg_integer), do: "a non-negative integer"
  defp describe(:integer), do: "an integer"
  defp describe(:boolean), do: "a boolean"
  defp describe(:string), do: "a string"
  defp describe(:atom), do: "an atom"
  defp describe(:keyword), do: "a keyword list"
  defp describe(:any), do: "any term"
  defp describe({:fun, arity}), do: "a function of arity #{arity}"
  defp describe({:in, values}), do: "one of #{Enum.map_join(values, ", ", &inspect/1)}"
  defp describe({:or, types}), do: Enum.map_join(types, " or ", &describe/1)
  defp describe({:list, type}), do: "a list of #{describe(type)}"
  defp describe(:address), do: ~s(a "host:port" string)

  @doc false
  # "host:port" (IPv6 as "[::1]:port"): {:ok, {host, port}}.
  @spec parse_address(String.t()) :: {:ok, {String.t(), :inet.port_number()}} | :error
  def parse_address(text) when is_binary(text) do
    with [_, host, port] <- Regex.run(~r/^\[?([^\[\]]+?)\]?:(\d{1,5})$/, text),
         {port, ""} when port in 0..65_535 <- Integer.parse(port) do
      {:ok, {host, port}}
    else
      _ -> :error
    end
  end

  @doc """
  The schema as a Markdown table (option, default, meaning), for moduledocs.
  """
  @spec docs(schema()) :: String.t()
  def docs(schema) do
    rows =
      for {key, spec} <- schema do
        default =
          if Keyword.has_key?(spec, :default), do: "`#{inspect(spec[:default])}`", else: "—"

        "| `#{inspect(key)}` | #{default} | #{spec[:doc]} |"
      end

    Enum.join(["| option | default | meaning |", "|---|---|---|" | rows], "\n")
  end
end
